using System.Text;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Providers.Cloud;

/// <summary>How a run's code is started inside a Linux sandbox image, and a shell-safe way to ship files in a command.</summary>
internal static class SandboxScript
{
    /// <summary>Where a python run's requirements are installed (inside the work directory, so nothing outside it changes).</summary>
    public const string PackagesDirectory = ".sandstorm-packages";

    /// <summary>
    /// The command line that runs the code (relative to the work directory): its entry point or main file; a python run
    /// with a <c>requirements.txt</c> first installs it with pip into <see cref="PackagesDirectory"/> (the provider's
    /// sandboxes have network), and a failed install is the run's failure, with pip's output on stderr.
    /// </summary>
    public static string RunCommand(ExecutionSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        // A main file's name or an entry point (letters, digits, '_', '-', '.'): nothing a shell would read specially.
        var file = SafeRelativePath(Languages.FileToRun(spec));
        var run = spec.Language switch
        {
            // -u: unbuffered, so output streams as it is produced (matters for streamed providers and for timeouts).
            Languages.Python => "python3 -u " + file,
            Languages.JavaScript => "node " + file,
            Languages.Bash => "bash " + file,
            _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Language, "unsupported language"),
        };
        if (RunIntent.RequirementsOf(spec.Language, spec.Files) == 0)
        {
            return run;
        }

        var install = $"python3 -m pip install --quiet --disable-pip-version-check --no-input --target {PackagesDirectory} -r requirements.txt 1>&2";
        return "bash -c " + Quote($"{install} && PYTHONPATH=\"$PWD/{PackagesDirectory}${{PYTHONPATH:+:$PYTHONPATH}}\" exec {run}");
    }

    /// <summary>The program text of a run: its entry point's content, or its code (for providers that take code, not files).</summary>
    public static string CodeOf(ExecutionSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return spec.EntryPoint is { } entry && spec.Files?.GetValueOrDefault(entry) is { } content ? content : spec.Code;
    }

    /// <summary>All files of a run (its extra files, then the main file unless an entry point among them runs) as relative path → content.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Files(ExecutionSpec spec)
    {
        var files = new List<KeyValuePair<string, string>>();
        foreach (var (path, content) in spec.Files ?? new Dictionary<string, string>())
        {
            files.Add(new(SafeRelativePath(path), content));
        }

        if (spec.EntryPoint is null)
        {
            files.Add(new(Languages.MainFile(spec.Language), spec.Code));
        }

        return files;
    }

    /// <summary>
    /// A bash script that writes every file (base64, so no quoting issue can arise from content) and then runs the code.
    /// Used where the provider has no file API we speak (Modal).
    /// </summary>
    public static string WriteAndRun(ExecutionSpec spec)
    {
        var script = new StringBuilder("set -e\n");
        foreach (var (path, content) in Files(spec))
        {
            var dir = Path.GetDirectoryName(path);
            if (!string.IsNullOrEmpty(dir))
            {
                script.Append("mkdir -p ").Append(Quote(dir)).Append('\n');
            }

            script.Append("printf '%s' '").Append(Convert.ToBase64String(Encoding.UTF8.GetBytes(content)))
                .Append("' | base64 -d > ").Append(Quote(path)).Append('\n');
        }

        foreach (var (name, value) in spec.Environment ?? new Dictionary<string, string>())
        {
            script.Append("export ").Append(EnvName(name)).Append('=').Append(Quote(value)).Append('\n');
        }

        script.Append("set +e\nexec ").Append(RunCommand(spec)).Append('\n');
        return script.ToString();
    }

    /// <summary>A file's content as a multipart part (the upload APIs take raw bytes).</summary>
    public static HttpContent FilePart(string content)
    {
        var part = new ByteArrayContent(Encoding.UTF8.GetBytes(content));
        part.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        return part;
    }

    /// <summary>Single-quotes a value for POSIX shells.</summary>
    public static string Quote(string value) => "'" + value.Replace("'", "'\"'\"'", StringComparison.Ordinal) + "'";

    /// <summary>Rejects absolute paths and parent-directory escapes: files land inside the run's work directory.</summary>
    public static string SafeRelativePath(string path)
    {
        var normalized = path.Replace('\\', '/').TrimStart('/');
        if (normalized.Length == 0 || normalized.Split('/').Any(segment => segment is ".." or ""))
        {
            throw new ArgumentException($"file path '{path}' must be relative and stay inside the work directory", nameof(path));
        }

        return normalized;
    }

    private static string EnvName(string name)
    {
        if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') || char.IsAsciiDigit(name[0]))
        {
            throw new ArgumentException($"environment variable name '{name}' is not valid", nameof(name));
        }

        return name;
    }
}
