using System.Text;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;

namespace Sandstorm.Core.Validation;

/// <summary>Checks a <see cref="RunRequest"/> against Sandstorm's limits before anything is persisted.</summary>
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

    /// <summary>All problems with the request, by field; empty when it is valid.</summary>
    public static IReadOnlyDictionary<string, string[]> Validate(RunRequest? request)
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
            return Freeze(errors);
        }

        if (string.IsNullOrEmpty(request.Code))
        {
            Add("code", "code is required");
        }
        else if (Encoding.UTF8.GetByteCount(request.Code) > MaxCodeBytes)
        {
            Add("code", $"code is larger than {MaxCodeBytes} bytes (1 MiB)");
        }

        if (!Languages.IsSupported(request.Language))
        {
            Add("language", $"language '{request.Language}' is not supported; use one of {string.Join(", ", Languages.Supported)}");
        }

        if (request.Files is { } files)
        {
            if (files.Count > MaxFiles)
            {
                Add("files", $"at most {MaxFiles} files");
            }

            long total = 0;
            foreach (var (path, content) in files)
            {
                if (!IsSafeRelativePath(path))
                {
                    Add("files", $"file path '{path}' must be relative, without '..', and at most 255 characters");
                }
                else if (path.Any(char.IsControl))
                {
                    Add("files", $"file path '{Printable(path)}' must not contain control characters (newlines, tabs, escapes)");
                }
                else if (path.Any(IsBidirectionalControl))
                {
                    Add("files", $"file path '{Printable(path)}' must not contain bidirectional text controls (they make names display as something else)");
                }
                else if (path.Split('/').Any(part => Encoding.UTF8.GetByteCount(part) > 255))
                {
                    Add("files", $"file path '{path}' has a part longer than 255 bytes, more than a file system allows in one name");
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
                        Add("files", $"'{path[..slash]}' is both a file and a directory of '{path}'");
                        break;
                    }
                }
            }

            if (total > MaxFilesBytes)
            {
                Add("files", $"files total {total} bytes, more than {MaxFilesBytes} (10 MiB)");
            }
        }

        if (request.Environment is { } env)
        {
            if (env.Count > MaxEnvironmentVariables)
            {
                Add("environment", $"at most {MaxEnvironmentVariables} variables");
            }

            foreach (var name in env.Keys)
            {
                if (!IsEnvironmentName(name))
                {
                    Add("environment", $"'{name}' is not a valid variable name");
                }
            }

            // No process environment can hold a NUL; a runtime that passes variables NUL-separated would split the value.
            foreach (var (name, value) in env)
            {
                if (value is not null && value.Contains('\0', StringComparison.Ordinal))
                {
                    Add("environment", $"the value of '{name}' contains a NUL character");
                }
            }
        }

        if (double.IsNaN(request.Cpu) || request.Cpu < MinCpu || request.Cpu > MaxCpu)
        {
            Add("cpu", $"cpu must be between {MinCpu} and {MaxCpu}");
        }

        if (request.Memory is < MinMemoryMiB or > MaxMemoryMiB)
        {
            Add("memory", $"memory must be between {MinMemoryMiB} and {MaxMemoryMiB} MiB");
        }

        if (request.Timeout is < MinTimeoutMs or > MaxTimeoutMs)
        {
            Add("timeout", $"timeout must be between {MinTimeoutMs} and {MaxTimeoutMs} ms (1 s to 15 min)");
        }

        if (!Enum.IsDefined(request.IsolationLevel))
        {
            Add("isolationLevel", "isolationLevel must be none, standard, strong or maximum");
        }

        if (!Enum.IsDefined(request.SecurityTier))
        {
            Add("securityTier", "securityTier must be basic or shield");
        }

        if (!Enum.IsDefined(request.Strategy))
        {
            Add("strategy", "strategy must be optimize_cost, optimize_latency, balanced or optimize_carbon");
        }

        if (request.RuntimePreference is { Length: > 64 })
        {
            Add("runtimePreference", "runtimePreference is at most 64 characters");
        }

        if (request.Constraints is { } c)
        {
            ValidateConstraints(c, Add);
        }

        return Freeze(errors);
    }

    /// <summary>Checks the constraints of a run or a kept sandbox; problems go to <paramref name="add"/> by field.</summary>
    public static void ValidateConstraints(RunConstraints c, Action<string, string> add)
    {
        void Add(string field, string message) => add(field, message);

        if (c.MaxCost is < 0 or > 1000)
        {
            Add("constraints.maxCost", "maxCost must be between 0 and 1000 USD");
        }

        if (c.MaxLatency is < 1 or > 24 * 3600 * 1000)
        {
            Add("constraints.maxLatency", "maxLatency must be a positive number of milliseconds");
        }

        if (c.PreferredRegion is { Length: > 64 })
        {
            Add("constraints.preferredRegion", "preferredRegion is at most 64 characters");
        }

        if (c.PreferredRegionWeight is { } weight && (double.IsNaN(weight) || weight < 0 || weight > 100))
        {
            Add("constraints.preferredRegionWeight", "preferredRegionWeight must be between 0 and 100");
        }

        if (c.PreferredRegionWeight is not null && c.PreferredRegion is null)
        {
            Add("constraints.preferredRegionWeight", "preferredRegionWeight needs preferredRegion");
        }

        if (c.AllowedRegions is { } allowed)
        {
            if (allowed.Count is 0 or > 32)
            {
                Add("constraints.allowedRegions", "allowedRegions lists 1 to 32 regions or residency sets (eu, us, ap)");
            }

            if (allowed.Any(r => string.IsNullOrWhiteSpace(r) || r.Length > 64))
            {
                Add("constraints.allowedRegions", "each allowed region is a non-empty name of at most 64 characters");
            }
        }

        if (c.MaxCarbon is { } carbon && (double.IsNaN(carbon) || carbon <= 0 || carbon > 1_000_000))
        {
            Add("constraints.maxCarbon", "maxCarbon must be a positive number of grams CO2e (at most 1,000,000)");
        }
    }

    /// <summary>Throws a <see cref="SandstormException"/> (validation-failed, 400) when the request is invalid.</summary>
    public static void ThrowIfInvalid(RunRequest? request)
    {
        var errors = Validate(request);
        if (errors.Count > 0)
        {
            var summary = string.Join("; ", errors.SelectMany(e => e.Value));
            throw new SandstormException(ErrorCodes.ValidationFailed, summary, 400, errors);
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
