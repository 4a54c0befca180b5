using System.Text;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;

namespace Sandstorm.Core.Validation;

/// <summary>
/// Checks a <see cref="RunRequest"/> against Sandstorm's limits before anything is persisted, and makes it canonical
/// (<see cref="Normalize"/>): the v1 SDK's and the launch post's aliases folded into the request's own fields.
/// </summary>
public static class RunRequestValidator
{
    public const int MaxCodeBytes = 1024 * 1024;
    public const int MaxFilesBytes = 10 * 1024 * 1024;
    public const int MaxFiles = 1000;
    public const int MaxEnvironmentVariables = 256;
    public const int MinTimeoutMs = 1_000;
    public const int MaxTimeoutMs = 15 * 60 * 1000;
    public const int MinMemoryMiB = 64;
    public const int MaxMemoryMiB = 16 * 1024;
    public const double MinCpu = 0.1;
    public const double MaxCpu = 16;
    public const int MaxRequirements = 200;
    public const string RequirementsFile = "requirements.txt";

    /// <summary>
    /// The canonical form of a request, or throws a <see cref="SandstormException"/> (validation-failed, 400) naming every
    /// field at fault. Canonical means:
    /// <list type="bullet">
    /// <item><c>language</c> is a canonical name (<c>shell</c> → <c>bash</c>); when <c>code</c> is the bare name of a file among
    /// <c>files</c> (<c>your_ai_code.py</c>), that file runs and a missing <c>language</c> is taken from its extension
    /// (a given one must agree); a code naming a file that is not there is refused, naming it;</item>
    /// <item><c>constraints.cpu</c>, <c>.memory</c> and <c>.timeout</c> are the request's own fields (both given and
    /// different is refused); <c>constraints.isolation</c> is <c>isolationLevel</c>, and when both are given the
    /// stronger applies, so an alias can never lower the isolation asked for;</item>
    /// <item><c>requirements</c> become a <c>requirements.txt</c> among the files (python only; not both);</item>
    /// <item><c>gpu</c>, <c>gpuType</c>, <c>constraints.gpu</c> and <c>constraints.requireGpu</c> are one <c>gpu</c>.</item>
    /// </list>
    /// </summary>
    public static RunRequest Normalize(RunRequest? request)
    {
        var (canonical, errors) = Check(request);
        if (errors.Count > 0)
        {
            var summary = string.Join("; ", errors.SelectMany(e => e.Value));
            throw new SandstormException(ErrorCodes.ValidationFailed, summary, 400, errors);
        }

        return canonical!;
    }

    /// <summary>All problems with the request (aliases included), by field; empty when it is valid.</summary>
    public static IReadOnlyDictionary<string, string[]> Validate(RunRequest? request) => Check(request).Errors;

    /// <summary>Throws a <see cref="SandstormException"/> (validation-failed, 400) when the request is invalid.</summary>
    public static void ThrowIfInvalid(RunRequest? request) => Normalize(request);

    /// <summary>The canonical request (null when it is null) and every problem found on the way.</summary>
    public static (RunRequest? Canonical, IReadOnlyDictionary<string, string[]> Errors) Check(RunRequest? request)
    {
        var errors = new Dictionary<string, List<string>>();
        void Add(string field, string message)
        {
            if (!errors.TryGetValue(field, out var list))
            {
                errors[field] = list = [];
            }

            list.Add(message);
        }

        if (request is null)
        {
            Add("body", "a run request is required");
            return (null, Freeze(errors));
        }

        var aliased = new HashSet<string>(StringComparer.Ordinal);
        var canonical = Fold(request, Add, aliased);
        ValidateCanonical(canonical, Add, aliased);
        return (canonical, Freeze(errors));
    }

    /// <summary>Folds the aliases into the request's own fields (see <see cref="Normalize"/>), reporting conflicts.</summary>
    private static RunRequest Fold(RunRequest request, Action<string, string> add, HashSet<string> aliased)
    {
        var result = request;

        // Language: canonical name; a code that names a file runs that file, in the language of its extension.
        var language = Languages.Canonical(request.Language ?? "");
        if (Languages.FileReference(request.Code) is { } file)
        {
            var ofFile = Languages.OfFile(file)!;
            if (request.Files is null || !request.Files.ContainsKey(file))
            {
                add("code", $"code names the file '{file}', which is not among files; add it to files, or send the program itself as code");
            }

            if (language.Length == 0)
            {
                language = ofFile;
            }
            else if (language != ofFile && Languages.IsSupported(language))
            {
                add("language", $"code names '{file}', a {ofFile} file, but language is '{request.Language}'; leave language out or make them agree");
            }
        }

        result = result with { Language = language };

        // Resources: the v1 SDK's constraints.cpu/memory/timeout are the request's own fields.
        if (request.Constraints is { } c)
        {
            if (c.Cpu is { } cpu)
            {
                if (request.HasCpu() && !request.Cpu.Equals(cpu))
                {
                    add("constraints.cpu", $"constraints.cpu ({cpu}) differs from cpu ({request.Cpu}); give one of them, or the same value");
                }

                result = result with { Cpu = cpu };
                aliased.Add("cpu");
            }

            if (c.Memory is { } memory)
            {
                if (request.HasMemory() && request.Memory != memory)
                {
                    add("constraints.memory", $"constraints.memory ({memory}) differs from memory ({request.Memory}); give one of them, or the same value");
                }

                result = result with { Memory = memory };
                aliased.Add("memory");
            }

            if (c.Timeout is { } timeout)
            {
                if (request.HasTimeout() && request.Timeout != timeout)
                {
                    add("constraints.timeout", $"constraints.timeout ({timeout}) differs from timeout ({request.Timeout}); give one of them, or the same value");
                }

                result = result with { Timeout = timeout };
                aliased.Add("timeout");
            }

            // Isolation: the stronger of the two, so neither spelling can lower what the other asked for.
            if (c.Isolation is { } isolation)
            {
                result = result with { IsolationLevel = request.HasIsolationLevel() && request.IsolationLevel > isolation ? request.IsolationLevel : isolation };
                aliased.Add("isolation");
            }

            result = result with
            {
                Constraints = c with { Cpu = null, Memory = null, Timeout = null, Isolation = null, Gpu = null, RequireGpu = null },
            };
        }

        var gpu = request.Gpu == true || request.GpuType is not null || request.Constraints?.Gpu == true || request.Constraints?.RequireGpu == true;
        result = result with { Gpu = gpu ? true : null };

        // Requirements: one requirements.txt among the files.
        if (request.Requirements is { Count: > 0 } requirements)
        {
            if (request.Files?.ContainsKey(RequirementsFile) == true)
            {
                add("requirements", $"give requirements or a {RequirementsFile} among files, not both");
            }

            if (language != Languages.Python)
            {
                add("requirements", "requirements are pip packages: only python runs install them");
            }

            if (requirements.Count > MaxRequirements)
            {
                add("requirements", $"at most {MaxRequirements} requirements");
            }

            foreach (var requirement in requirements)
            {
                if (string.IsNullOrWhiteSpace(requirement) || requirement.Length > 256 || requirement.AsSpan().ContainsAny('\n', '\r', '\0') || requirement.TrimStart().StartsWith('-'))
                {
                    add("requirements", $"'{Shorten(requirement)}' is not a package requirement (a name with an optional version, at most 256 characters, no pip options)");
                }
            }

            var files = new Dictionary<string, string>(request.Files ?? new Dictionary<string, string>(), StringComparer.Ordinal)
            {
                [RequirementsFile] = string.Join('\n', requirements.Select(r => r?.Trim())) + "\n",
            };
            result = result with { Files = files };
        }

        return result with { Requirements = null };
    }

    private static void ValidateCanonical(RunRequest request, Action<string, string> add, IReadOnlySet<string> aliased)
    {
        if (string.IsNullOrEmpty(request.Code))
        {
            add("code", "code is required");
        }
        else if (Encoding.UTF8.GetByteCount(request.Code) > MaxCodeBytes)
        {
            add("code", $"code is larger than {MaxCodeBytes} bytes (1 MiB)");
        }

        if (request.Language.Length == 0)
        {
            add("language", $"language is required: one of {string.Join(", ", Languages.Supported)} (or {string.Join(", ", Languages.Aliases.Keys)})");
        }
        else if (!Languages.IsSupported(request.Language))
        {
            add("language", $"language '{request.Language}' is not supported; use one of {string.Join(", ", Languages.Supported)} (or {string.Join(", ", Languages.Aliases.Keys)})");
        }

        if (request.GpuType is { Length: > 64 })
        {
            add("gpuType", "gpuType is at most 64 characters");
        }

        if (request.Files is { } files)
        {
            if (files.Count > MaxFiles)
            {
                add("files", $"at most {MaxFiles} files");
            }

            long total = 0;
            foreach (var (path, content) in files)
            {
                if (!IsSafeRelativePath(path))
                {
                    add("files", $"file path '{path}' must be relative, without '..', and at most 255 characters");
                }
                else if (path.Any(char.IsControl))
                {
                    add("files", $"file path '{Printable(path)}' must not contain control characters (newlines, tabs, escapes)");
                }
                else if (path.Any(IsBidirectionalControl))
                {
                    add("files", $"file path '{Printable(path)}' must not contain bidirectional text controls (they make names display as something else)");
                }
                else if (path.Split('/').Any(part => Encoding.UTF8.GetByteCount(part) > 255))
                {
                    add("files", $"file path '{path}' has a part longer than 255 bytes, more than a file system allows in one name");
                }

                total += Encoding.UTF8.GetByteCount(content ?? "");
            }

            // A name cannot be a file and, through another path, a directory at once.
            var names = files.Keys.ToHashSet(StringComparer.Ordinal);
            foreach (var path in files.Keys.Order(StringComparer.Ordinal))
            {
                for (var slash = path.IndexOf('/', StringComparison.Ordinal); slash > 0; slash = path.IndexOf('/', slash + 1))
                {
                    if (names.Contains(path[..slash]))
                    {
                        add("files", $"'{path[..slash]}' is both a file and a directory of '{path}'");
                        break;
                    }
                }
            }

            if (total > MaxFilesBytes)
            {
                add("files", $"files total {total} bytes, more than {MaxFilesBytes} (10 MiB)");
            }
        }

        if (request.Environment is { } env)
        {
            if (env.Count > MaxEnvironmentVariables)
            {
                add("environment", $"at most {MaxEnvironmentVariables} variables");
            }

            foreach (var name in env.Keys)
            {
                if (!IsEnvironmentName(name))
                {
                    add("environment", $"'{name}' is not a valid variable name");
                }
            }

            // No process environment can hold a NUL; a runtime that passes variables NUL-separated would split the value.
            foreach (var (name, value) in env)
            {
                if (value is not null && value.Contains('\0', StringComparison.Ordinal))
                {
                    add("environment", $"the value of '{name}' contains a NUL character");
                }
            }
        }

        if (double.IsNaN(request.Cpu) || request.Cpu < MinCpu || request.Cpu > MaxCpu)
        {
            add(aliased.Contains("cpu") ? "constraints.cpu" : "cpu", $"cpu must be between {MinCpu} and {MaxCpu}");
        }

        if (request.Memory is < MinMemoryMiB or > MaxMemoryMiB)
        {
            add(aliased.Contains("memory") ? "constraints.memory" : "memory", $"memory must be between {MinMemoryMiB} and {MaxMemoryMiB} MiB");
        }

        if (request.Timeout is < MinTimeoutMs or > MaxTimeoutMs)
        {
            add(aliased.Contains("timeout") ? "constraints.timeout" : "timeout", $"timeout must be between {MinTimeoutMs} and {MaxTimeoutMs} ms (1 s to 15 min)");
        }

        if (!Enum.IsDefined(request.IsolationLevel))
        {
            add(aliased.Contains("isolation") ? "constraints.isolation" : "isolationLevel", "isolationLevel must be none, standard, strong or maximum");
        }

        if (!Enum.IsDefined(request.SecurityTier))
        {
            add("securityTier", "securityTier must be basic or shield");
        }

        if (!Enum.IsDefined(request.Strategy))
        {
            add("strategy", "strategy must be optimize_cost, optimize_latency, balanced or optimize_carbon");
        }

        if (request.RuntimePreference is { Length: > 64 })
        {
            add("runtimePreference", "runtimePreference is at most 64 characters");
        }

        if (request.Deployment is { } deployment && deployment != Deployments.BareMetal)
        {
            add("deployment", $"deployment '{Printable(deployment)}' is not supported: use '{Deployments.BareMetal}' (with bootcImage) or leave it out");
        }
        else if (request.Deployment == Deployments.BareMetal && request.BootcImage is null)
        {
            add("bootcImage", "deployment 'bare-metal' needs bootcImage: the image (name or name@sha256:digest) the agent's machine was booted from");
        }

        if (request.BootcImage is { } image)
        {
            if (request.Deployment != Deployments.BareMetal)
            {
                add("bootcImage", "bootcImage is only for deployment 'bare-metal'");
            }
            else if (Deployments.ImageProblem(image) is { } problem)
            {
                add("bootcImage", problem);
            }
        }

        if (request.Constraints is { } c)
        {
            ValidateConstraints(c, add);

            if (c.RequireShieldCoverage == true && request.SecurityTier != SecurityTier.Shield)
            {
                add("constraints.requireShieldCoverage", "requireShieldCoverage needs securityTier 'shield'");
            }
        }
    }

    /// <summary>Checks the constraints of a run or a kept sandbox; problems go to <paramref name="add"/> by field.</summary>
    public static void ValidateConstraints(RunConstraints c, Action<string, string> add)
    {
        if (c.MaxCost is < 0 or > 1000)
        {
            add("constraints.maxCost", "maxCost must be between 0 and 1000 USD");
        }

        if (c.MaxLatency is < 1 or > 24 * 3600 * 1000)
        {
            add("constraints.maxLatency", "maxLatency must be a positive number of milliseconds");
        }

        if (c.PreferredRegion is { Length: > 64 })
        {
            add("constraints.preferredRegion", "preferredRegion is at most 64 characters");
        }

        if (c.PreferredRegionWeight is { } weight && (double.IsNaN(weight) || weight < 0 || weight > 100))
        {
            add("constraints.preferredRegionWeight", "preferredRegionWeight must be between 0 and 100");
        }

        if (c.PreferredRegionWeight is not null && c.PreferredRegion is null)
        {
            add("constraints.preferredRegionWeight", "preferredRegionWeight needs preferredRegion");
        }

        if (c.AllowedRegions is { } allowed)
        {
            if (allowed.Count is 0 or > 32)
            {
                add("constraints.allowedRegions", "allowedRegions lists 1 to 32 regions or residency sets (eu, us, ap)");
            }

            if (allowed.Any(r => string.IsNullOrWhiteSpace(r) || r.Length > 64))
            {
                add("constraints.allowedRegions", "each allowed region is a non-empty name of at most 64 characters");
            }
        }

        if (c.MaxCarbon is { } carbon && (double.IsNaN(carbon) || carbon <= 0 || carbon > 1_000_000))
        {
            add("constraints.maxCarbon", "maxCarbon must be a positive number of grams CO2e (at most 1,000,000)");
        }
    }

    private static Dictionary<string, string[]> Freeze(Dictionary<string, List<string>> errors) =>
        errors.ToDictionary(e => e.Key, e => e.Value.ToArray());

    private static bool IsSafeRelativePath(string path) =>
        !string.IsNullOrWhiteSpace(path)
        && path.Length <= 255
        && !path.StartsWith('/')
        && !path.Contains('\0')
        && !path.Contains('\\')
        && path.Split('/').All(part => part.Length > 0 && part != "." && part != "..");

    private static string Shorten(string? text) => text is null ? "" : text.Length <= 40 ? text : text[..40] + "…";

    // U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069: characters that reorder how the text around them is shown.
    private static bool IsBidirectionalControl(char c) => c is '\u061C' or '\u200E' or '\u200F' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069');

    private static string Printable(string path) =>
        string.Concat(path.Select(c => char.IsControl(c) || IsBidirectionalControl(c) ? $"\\u{(int)c:X4}" : c.ToString()));

    /// <summary>A POSIX-portable environment variable name of at most 128 characters.</summary>
    public static bool IsEnvironmentName(string name) =>
        name.Length is > 0 and <= 128
        && (char.IsAsciiLetter(name[0]) || name[0] == '_')
        && name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_');
}
