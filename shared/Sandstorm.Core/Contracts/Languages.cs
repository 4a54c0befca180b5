namespace Sandstorm.Core.Contracts;

/// <summary>The language allow-list, its aliases and file extensions, and how each language is started. Declared once here.</summary>
public static class Languages
{
    public const string Python = "python";
    public const string JavaScript = "javascript";
    public const string TypeScript = "typescript";
    public const string Bash = "bash";

    /// <summary>The v1 SDK's name for <see cref="Bash"/>.</summary>
    public const string Shell = "shell";

    /// <summary>
    /// The TypeScript compiler the TypeScript runner loads (Debian's <c>node-typescript</c>). It lives under /usr, which every
    /// sandbox binds read-only, so TypeScript runs offline wherever Node.js and this file are installed.
    /// </summary>
    public const string TypeScriptCompiler = "/usr/share/nodejs/typescript/lib/typescript.js";

    /// <summary>Languages a run may ask for (canonical names).</summary>
    public static IReadOnlyList<string> Supported { get; } = [Python, JavaScript, TypeScript, Bash];

    /// <summary>Other names accepted for a language, and the canonical name each stands for.</summary>
    public static IReadOnlyDictionary<string, string> Aliases { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [Shell] = Bash,
    };

    /// <summary>The languages of the v1 SDK and the v2 API before TypeScript: what an edge agent that does not report its languages runs.</summary>
    public static IReadOnlyList<string> Baseline { get; } = [Python, JavaScript, Bash];

    /// <summary>File extensions (with the dot) that say which language a file is in, for runs whose code names a file.</summary>
    public static IReadOnlyDictionary<string, string> Extensions { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [".py"] = Python,
        [".js"] = JavaScript,
        [".mjs"] = JavaScript,
        [".cjs"] = JavaScript,
        [".ts"] = TypeScript,
        [".sh"] = Bash,
        [".bash"] = Bash,
    };

    public static bool IsSupported(string? language) => language is not null && Supported.Contains(language);

    /// <summary>The canonical name of a language or alias (<c>shell</c> → <c>bash</c>); other names are returned as given.</summary>
    public static string Canonical(string language) => Aliases.TryGetValue(language, out var canonical) ? canonical : language;

    /// <summary>The language of a file by its extension, or null when the extension names none.</summary>
    public static string? OfFile(string path) =>
        Path.GetExtension(path) is { Length: > 0 } extension && Extensions.TryGetValue(extension, out var language) ? language : null;

    /// <summary>
    /// When <paramref name="code"/> is a bare file name with a language's extension (<c>your_ai_code.py</c>: no directory,
    /// no whitespace), that name; else null. Such code is not a program in any of the languages, so it is read as "run this
    /// file from <c>files</c>".
    /// </summary>
    public static string? FileReference(string? code)
    {
        if (code is not { Length: > 0 and <= 255 } || OfFile(code) is null || code[0] == '.')
        {
            return null;
        }

        return code.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.') ? code : null;
    }

    /// <summary>The file a run executes instead of its code: <paramref name="code"/> when it is a file reference present in <paramref name="files"/>.</summary>
    public static string? EntryPoint(string? code, IReadOnlyDictionary<string, string>? files) =>
        FileReference(code) is { } name && files is not null && files.ContainsKey(name) ? name : null;

    /// <summary>File name the code is written to inside the sandbox.</summary>
    public static string MainFile(string language) => language switch
    {
        Python => "main.py",
        JavaScript => "main.js",
        TypeScript => "main.ts",
        Bash => "main.sh",
        _ => throw new ArgumentOutOfRangeException(nameof(language), language, "unsupported language"),
    };

    /// <summary>The file an execution starts: its entry point among the files, else the main file holding its code.</summary>
    public static string FileToRun(ExecutionSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return spec.EntryPoint ?? MainFile(spec.Language);
    }

    /// <summary>True for languages whose interpreter is Node.js.</summary>
    public static bool RunsOnNode(string language) => language is JavaScript or TypeScript;

    /// <summary>Interpreter (absolute path of the system's, which sandboxes can bind read-only) and its arguments before the script.</summary>
    public static (string Command, string[] Arguments) Interpreter(string language) => language switch
    {
        Python => ("/usr/bin/python3", ["-u"]),
        JavaScript => ("/usr/bin/node", []),
        // node -e RUNNER FILE: the runner transpiles FILE (and the .ts files it requires) and runs it as the main module.
        TypeScript => ("/usr/bin/node", ["-e", TypeScriptRunner.Source]),
        Bash => ("/bin/bash", []),
        _ => throw new ArgumentOutOfRangeException(nameof(language), language, "unsupported language"),
    };

    /// <summary>The host files a language needs (its interpreter and, for TypeScript, the compiler).</summary>
    public static IReadOnlyList<string> HostRequirements(string language) => language switch
    {
        TypeScript => [Interpreter(language).Command, TypeScriptCompiler],
        _ => [Interpreter(language).Command],
    };

    /// <summary>
    /// Why <paramref name="language"/> cannot run on this machine (an interpreter or the TypeScript compiler is not installed),
    /// or null when it can. Runtimes bind the host's /usr, so what is missing here is missing in every sandbox here.
    /// </summary>
    public static string? Unavailable(string language)
    {
        if (!IsSupported(language))
        {
            return $"language '{language}' is not supported (supported: {string.Join(", ", Supported)})";
        }

        var missing = HostRequirements(language).Where(path => !File.Exists(path)).ToList();
        return missing.Count == 0
            ? null
            : $"{language} cannot run on this machine: {string.Join(" and ", missing)} {(missing.Count == 1 ? "is" : "are")} not installed"
              + (language == TypeScript ? " (Debian package node-typescript, with nodejs)" : "");
    }

    /// <summary>The supported languages this machine can run.</summary>
    public static IReadOnlyList<string> Available() => [.. Supported.Where(l => Unavailable(l) is null)];
}
