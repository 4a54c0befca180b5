using System.Text;
using System.Text.Json;
using Sandstorm.Core;

namespace Sandstorm.BootKit;

/// <summary>
/// Reads a Dockerfile into a <see cref="BuildPlan"/>: one stage <c>FROM</c> a known Debian/Ubuntu release, then
/// <c>RUN</c>, <c>COPY</c>, <c>ADD</c> (local files), <c>ENV</c>, <c>WORKDIR</c>, <c>USER</c>, <c>EXPOSE</c>,
/// <c>CMD</c> and <c>ENTRYPOINT</c>. Anything it cannot honour is refused with its line number, never skipped.
/// </summary>
public static class DockerfileParser
{
    private static readonly string[] Allowed = ["FROM", "RUN", "COPY", "ADD", "ENV", "WORKDIR", "USER", "EXPOSE", "CMD", "ENTRYPOINT"];

    /// <summary>Parses the Dockerfile at <paramref name="dockerfilePath"/>; the build context is <paramref name="context"/> (default: its folder).</summary>
    public static BuildPlan ParseFile(string dockerfilePath, string? context = null)
    {
        if (!File.Exists(dockerfilePath))
        {
            throw new DockerfileException(0, $"no such file: {dockerfilePath}");
        }

        var ctx = context ?? Path.GetDirectoryName(Path.GetFullPath(dockerfilePath))!;
        return Parse(File.ReadAllText(dockerfilePath), ctx);
    }

    /// <summary>Parses Dockerfile <paramref name="text"/> whose <c>COPY</c> sources are relative to <paramref name="context"/>.</summary>
    public static BuildPlan Parse(string text, string context)
    {
        if (!Directory.Exists(context))
        {
            throw new DockerfileException(0, $"build context {context} is not a folder");
        }

        var instructions = Split(text);
        if (instructions.Count == 0)
        {
            throw new DockerfileException(0, "the file has no instructions (empty, or only comments)");
        }

        var state = new State(ContextRoot(context));
        BaseSuite? suite = null;
        foreach (var (line, keyword, args) in instructions)
        {
            if (!Allowed.Contains(keyword, StringComparer.Ordinal))
            {
                throw new DockerfileException(line, $"instruction {keyword} is not supported by BootKit (supported: {string.Join(", ", Allowed)})");
            }

            if (args.Length == 0)
            {
                throw new DockerfileException(line, $"{keyword} needs arguments");
            }

            if (suite is null && keyword != "FROM")
            {
                throw new DockerfileException(line, $"{keyword} before FROM: the first instruction must be FROM");
            }

            switch (keyword)
            {
                case "FROM" when suite is not null:
                    throw new DockerfileException(line, "a second FROM: multi-stage builds are not supported by BootKit");
                case "FROM":
                    suite = From(line, args);
                    break;
                case "RUN":
                    state.Steps.Add(new RunStep(line, Command(line, args, "RUN"), state.User, state.Workdir, new Dictionary<string, string>(state.Env, StringComparer.Ordinal)));
                    break;
                case "COPY" or "ADD":
                    state.Steps.Add(Copy(line, keyword, args, state));
                    break;
                case "ENV":
                    foreach (var (name, value) in Env(line, args, state))
                    {
                        state.Env[name] = value;
                    }

                    break;
                case "WORKDIR":
                    state.Workdir = UnixPath.Combine(state.Workdir, Expand(line, args, state.Env));
                    state.Steps.Add(new WorkdirStep(line, state.Workdir));
                    break;
                case "USER":
                    state.User = User(line, Expand(line, args, state.Env));
                    break;
                case "EXPOSE":
                    foreach (var word in Words(line, Expand(line, args, state.Env)))
                    {
                        state.Ports.Add(Port(line, word));
                    }

                    break;
                case "CMD":
                    state.Cmd = (line, args);
                    break;
                case "ENTRYPOINT":
                    state.Entrypoint = (line, args);
                    break;
            }
        }

        return new BuildPlan
        {
            Base = suite!,
            Steps = state.Steps,
            Environment = state.Env,
            WorkingDirectory = state.Workdir,
            User = state.User,
            Ports = state.Ports,
            Service = Service(state),
            Context = state.Context,
        };
    }

    private sealed class State(string context)
    {
        public string Context { get; } = context;
        public List<BuildStep> Steps { get; } = [];
        public Dictionary<string, string> Env { get; } = new(StringComparer.Ordinal);
        public List<ExposedPort> Ports { get; } = [];
        public string Workdir { get; set; } = "/";
        public string User { get; set; } = "root";
        public (int Line, string Args)? Cmd { get; set; }
        public (int Line, string Args)? Entrypoint { get; set; }
    }

    /// <summary>The instructions: continuation lines joined, comments and blank lines dropped, each with its first line.</summary>
    private static List<(int Line, string Keyword, string Args)> Split(string text)
    {
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var result = new List<(int, string, string)>();
        var current = new StringBuilder();
        var start = 0;
        var directives = true;
        for (var i = 0; i < lines.Length; i++)
        {
            var raw = lines[i];
            var trimmed = raw.TrimStart();
            if (trimmed.StartsWith('#'))
            {
                // Parser directives (# escape=...) may only open the file; a different escape character would change
                // how every line continues, which this parser does not do.
                if (directives && trimmed.TrimStart('#').Trim() is var d && d.StartsWith("escape", StringComparison.OrdinalIgnoreCase)
                    && d.Split('=', 2) is [_, var ch] && ch.Trim() != "\\")
                {
                    throw new DockerfileException(i + 1, $"parser directive '{d}' is not supported: only the default escape character \\");
                }

                continue;
            }

            directives = false;
            if (current.Length == 0)
            {
                if (trimmed.Length == 0)
                {
                    continue;
                }

                start = i + 1;
            }
            else if (trimmed.Length == 0)
            {
                // A blank line inside a continuation is skipped, as Docker does.
                continue;
            }

            var body = raw.TrimEnd();
            if (body.EndsWith('\\'))
            {
                current.Append(body[..^1]).Append(' ');
                continue;
            }

            current.Append(body);
            result.Add(Instruction(start, current.ToString()));
            current.Clear();
        }

        if (current.Length > 0)
        {
            result.Add(Instruction(start, current.ToString()));
        }

        return result;
    }

    private static (int, string, string) Instruction(int line, string text)
    {
        var t = text.Trim();
        var space = t.IndexOfAny([' ', '\t']);
        var keyword = (space < 0 ? t : t[..space]).ToUpperInvariant();
        var args = space < 0 ? "" : t[(space + 1)..].Trim();
        return (line, keyword, args);
    }

    private static BaseSuite From(int line, string args)
    {
        var words = args.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (words[0].StartsWith("--", StringComparison.Ordinal))
        {
            throw new DockerfileException(line, $"FROM option {words[0]} is not supported");
        }

        // FROM image [AS name]: the stage name is harmless in a single-stage build.
        if (words.Length is not (1 or 3) || (words.Length == 3 && !words[1].Equals("AS", StringComparison.OrdinalIgnoreCase)))
        {
            throw new DockerfileException(line, $"FROM takes an image and an optional 'AS name' (got '{args}')");
        }

        if (words[0].Contains('$', StringComparison.Ordinal))
        {
            throw new DockerfileException(line, "variables in FROM are not supported (ARG is not supported)");
        }

        var (suite, problem) = BaseImages.Map(words[0]);
        return suite ?? throw new DockerfileException(line, problem!);
    }

    /// <summary>Exec form (a JSON array of strings) as is; shell form as <c>/bin/sh -c</c>.</summary>
    private static List<string> Command(int line, string args, string keyword)
    {
        if (args.StartsWith('['))
        {
            try
            {
                if (JsonSerializer.Deserialize<List<string>>(args) is { Count: > 0 } argv && argv.All(a => a is not null))
                {
                    return argv;
                }
            }
            catch (JsonException)
            {
                // Not a JSON array: Docker runs it in the shell form, and so do we.
            }
        }

        if (args.StartsWith("<<", StringComparison.Ordinal))
        {
            throw new DockerfileException(line, $"{keyword} with a here-document is not supported");
        }

        if (keyword == "RUN" && args.StartsWith("--", StringComparison.Ordinal))
        {
            throw new DockerfileException(line, $"RUN option {args.Split(' ')[0]} is not supported");
        }

        return ["/bin/sh", "-c", args];
    }

    private static CopyStep Copy(int line, string keyword, string args, State state)
    {
        List<string> words;
        if (args.StartsWith('['))
        {
            try
            {
                words = JsonSerializer.Deserialize<List<string>>(args) ?? [];
            }
            catch (JsonException)
            {
                throw new DockerfileException(line, $"{keyword} arguments are not a JSON array of strings");
            }
        }
        else
        {
            words = Words(line, args);
        }

        string? chown = null, chmod = null;
        while (words.Count > 0 && words[0].StartsWith("--", StringComparison.Ordinal))
        {
            var flag = words[0];
            words.RemoveAt(0);
            if (flag.StartsWith("--chown=", StringComparison.Ordinal))
            {
                chown = Expand(line, flag["--chown=".Length..], state.Env);
            }
            else if (flag.StartsWith("--chmod=", StringComparison.Ordinal) && IsOctalMode(flag["--chmod=".Length..]))
            {
                chmod = flag["--chmod=".Length..];
            }
            else if (flag.StartsWith("--from", StringComparison.Ordinal))
            {
                throw new DockerfileException(line, $"{keyword} --from (another stage or image) is not supported: only files inside the build context");
            }
            else
            {
                throw new DockerfileException(line, $"{keyword} option {flag} is not supported");
            }
        }

        if (words.Count < 2)
        {
            throw new DockerfileException(line, $"{keyword} needs at least one source and a destination");
        }

        var destination = Expand(line, words[^1], state.Env);
        var sources = new List<string>();
        foreach (var raw in words.Take(words.Count - 1))
        {
            var source = Expand(line, raw, state.Env);
            sources.Add(ContextSource(line, keyword, source, state.Context));
        }

        var absolute = UnixPath.Combine(state.Workdir, destination);
        if (destination.EndsWith('/') && !absolute.EndsWith('/'))
        {
            absolute += "/";
        }

        if (sources.Count > 1 && !destination.EndsWith('/'))
        {
            throw new DockerfileException(line, $"{keyword} with several sources needs a destination folder ending in '/'");
        }

        return new CopyStep(line, sources, absolute, chown, chmod);
    }

    private static bool IsOctalMode(string mode) => mode.Length is >= 3 and <= 4 && mode.All(c => c is >= '0' and <= '7');

    /// <summary>
    /// The source as a path relative to the context, after checking that neither it nor anything it reaches through a
    /// symlink lies outside the context.
    /// </summary>
    private static string ContextSource(int line, string keyword, string source, string context)
    {
        if (source.Contains("://", StringComparison.Ordinal) || source.StartsWith("git@", StringComparison.Ordinal))
        {
            throw new DockerfileException(line, $"{keyword} from a URL ({source}) is not supported: only local files inside the build context");
        }

        if (source.IndexOfAny(['*', '?', '[']) >= 0)
        {
            throw new DockerfileException(line, $"wildcards in {keyword} sources are not supported ({source})");
        }

        // Docker reads a leading '/' as the context's root.
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.Combine(context, source.TrimStart('/'))));
        if (!IsInside(full, context))
        {
            throw new DockerfileException(line, $"{keyword} source '{source}' is outside the build context");
        }

        // Each component on the way may be a symlink: follow them one by one, each must stay inside.
        var relative = Path.GetRelativePath(context, full);
        var walked = context;
        foreach (var part in relative == "." ? [] : relative.Split(Path.DirectorySeparatorChar))
        {
            walked = Path.Combine(walked, part);
            var info = new FileInfo(walked);
            if (info.LinkTarget is not null)
            {
                var target = Path.GetFullPath(info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.Combine(Path.GetDirectoryName(walked)!, info.LinkTarget));
                if (!IsInside(target, context))
                {
                    throw new DockerfileException(line, $"{keyword} source '{source}' goes through symlink {Path.GetRelativePath(context, walked)} that points outside the build context");
                }
            }
        }

        if (!File.Exists(full) && !Directory.Exists(full))
        {
            throw new DockerfileException(line, $"{keyword} source '{source}' does not exist in the build context");
        }

        if (Directory.Exists(full))
        {
            foreach (var entry in new DirectoryInfo(full).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            {
                if (entry.LinkTarget is { } link)
                {
                    var target = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(entry.FullName)!, link));
                    if (!IsInside(target, context))
                    {
                        throw new DockerfileException(line, $"{keyword} source '{source}' holds symlink {Path.GetRelativePath(context, entry.FullName)} that points outside the build context");
                    }
                }
            }
        }
        else if (keyword == "ADD" && IsArchive(full))
        {
            // ADD unpacks local archives; BootKit does not, and copying the archive instead would change the image.
            throw new DockerfileException(line, $"ADD of archive '{source}' (which Docker unpacks) is not supported: COPY it and RUN tar");
        }

        return relative == "." ? "." : relative.Replace(Path.DirectorySeparatorChar, '/');
    }

    private static bool IsArchive(string path) =>
        new[] { ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst" }.Any(e => path.EndsWith(e, StringComparison.OrdinalIgnoreCase));

    private static bool IsInside(string path, string context) =>
        path == context || path.StartsWith(context.EndsWith('/') ? context : context + "/", StringComparison.Ordinal);

    /// <summary>The context with its own symlinks resolved, so that links inside it are compared with its real path.</summary>
    private static string ContextRoot(string context)
    {
        var full = Path.GetFullPath(context).TrimEnd('/');
        var parts = full.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var real = "/";
        foreach (var part in parts)
        {
            real = Path.Combine(real, part);
            var info = new DirectoryInfo(real);
            if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
            {
                real = target.FullName;
            }
        }

        return real.Length > 1 ? real.TrimEnd('/') : real;
    }

    private static List<(string Name, string Value)> Env(int line, string args, State state)
    {
        var words = Words(line, args);
        if (!words[0].Contains('=', StringComparison.Ordinal))
        {
            // Legacy form: ENV NAME value with spaces.
            var space = args.IndexOfAny([' ', '\t']);
            if (space < 0)
            {
                throw new DockerfileException(line, $"ENV {args} has no value");
            }

            var name = args[..space];
            CheckName(line, name);
            return [(name, Expand(line, Unquote(line, args[(space + 1)..].Trim()), state.Env))];
        }

        var result = new List<(string, string)>();
        var env = new Dictionary<string, string>(state.Env, StringComparer.Ordinal);
        foreach (var word in words)
        {
            var eq = word.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new DockerfileException(line, $"ENV expects NAME=value pairs (got '{word}')");
            }

            var name = word[..eq];
            CheckName(line, name);
            var value = Expand(line, word[(eq + 1)..], env);
            env[name] = value;
            result.Add((name, value));
        }

        return result;
    }

    private static void CheckName(int line, string name)
    {
        if (name.Length == 0 || !(char.IsAsciiLetter(name[0]) || name[0] == '_') || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
        {
            throw new DockerfileException(line, $"'{name}' is not a valid environment variable name");
        }
    }

    private static string User(int line, string user)
    {
        if (user.Split(':') is not ({ Length: 1 or 2 } parts) || parts.Any(p => p.Length == 0 || !p.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
        {
            throw new DockerfileException(line, $"USER '{user}' is not a user name or uid (optionally :group)");
        }

        return user;
    }

    private static ExposedPort Port(int line, string word)
    {
        var parts = word.Split('/');
        var protocol = parts.Length == 2 ? parts[1].ToLowerInvariant() : "tcp";
        if (parts.Length > 2 || protocol is not ("tcp" or "udp") || !int.TryParse(parts[0], out var port) || port is < 1 or > 65535)
        {
            throw new DockerfileException(line, $"EXPOSE '{word}' is not a port (1-65535, optionally /tcp or /udp)");
        }

        return new ExposedPort(port, protocol);
    }

    private static ServiceSpec? Service(State state)
    {
        List<string>? argv;
        int line;
        if (state.Entrypoint is { } ep)
        {
            line = ep.Line;
            argv = Command(ep.Line, ep.Args, "ENTRYPOINT");
            // Docker appends CMD to an exec-form ENTRYPOINT; a shell-form ENTRYPOINT runs alone.
            if (ep.Args.StartsWith('[') && argv is not ["/bin/sh", "-c", _] && state.Cmd is { } cmd)
            {
                argv.AddRange(Command(cmd.Line, cmd.Args, "CMD"));
            }
        }
        else if (state.Cmd is { } cmd)
        {
            line = cmd.Line;
            argv = Command(cmd.Line, cmd.Args, "CMD");
        }
        else
        {
            return null;
        }

        return new ServiceSpec(line, argv, state.User, state.Workdir, state.Env);
    }

    /// <summary>Splits on blanks, honouring "double" and 'single' quotes and backslash escapes.</summary>
    private static List<string> Words(int line, string text)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        var inWord = false;
        char quote = '\0';
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
                else if (c == '\\' && quote == '"' && i + 1 < text.Length)
                {
                    current.Append(text[++i]);
                }
                else
                {
                    current.Append(c);
                }
            }
            else if (c is '"' or '\'')
            {
                quote = c;
                inWord = true;
            }
            else if (c == '\\' && i + 1 < text.Length)
            {
                current.Append(text[++i]);
                inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
            }
            else
            {
                current.Append(c);
                inWord = true;
            }
        }

        if (quote != '\0')
        {
            throw new DockerfileException(line, "unterminated quote");
        }

        if (inWord)
        {
            words.Add(current.ToString());
        }

        return words;
    }

    private static string Unquote(int line, string text) => Words(line, text) is [var one] && text.Length > 0 && text[0] is '"' or '\'' ? one : text;

    /// <summary>Docker's variable substitution: $NAME, ${NAME}, ${NAME:-default}, ${NAME:+alternative}; \$ is a literal $.</summary>
    private static string Expand(int line, string text, IReadOnlyDictionary<string, string> env)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\\' && i + 1 < text.Length && text[i + 1] == '$')
            {
                sb.Append('$');
                i++;
            }
            else if (c == '$' && i + 1 < text.Length && text[i + 1] == '{')
            {
                var end = text.IndexOf('}', i + 2);
                if (end < 0)
                {
                    throw new DockerfileException(line, "unterminated ${...}");
                }

                var inner = text[(i + 2)..end];
                var colon = inner.IndexOf(':', StringComparison.Ordinal);
                var name = colon < 0 ? inner : inner[..colon];
                CheckName(line, name);
                var value = env.GetValueOrDefault(name);
                if (colon < 0)
                {
                    sb.Append(value);
                }
                else if (inner[colon..].StartsWith(":-", StringComparison.Ordinal))
                {
                    sb.Append(string.IsNullOrEmpty(value) ? inner[(colon + 2)..] : value);
                }
                else if (inner[colon..].StartsWith(":+", StringComparison.Ordinal))
                {
                    sb.Append(string.IsNullOrEmpty(value) ? "" : inner[(colon + 2)..]);
                }
                else
                {
                    throw new DockerfileException(line, $"substitution ${{{inner}}} is not supported (only :- and :+)");
                }

                i = end;
            }
            else if (c == '$' && i + 1 < text.Length && (char.IsAsciiLetter(text[i + 1]) || text[i + 1] == '_'))
            {
                var j = i + 1;
                while (j < text.Length && (char.IsAsciiLetterOrDigit(text[j]) || text[j] == '_'))
                {
                    j++;
                }

                sb.Append(env.GetValueOrDefault(text[(i + 1)..j]));
                i = j - 1;
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }
}
