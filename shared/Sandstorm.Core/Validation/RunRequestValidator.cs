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

                total += Encoding.UTF8.GetByteCount(content ?? "");
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

            if (c.RequireShieldCoverage == true && request.SecurityTier != SecurityTier.Shield)
            {
                Add("constraints.requireShieldCoverage", "requireShieldCoverage needs securityTier 'shield'");
            }
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

    /// <summary>A POSIX-portable environment variable name of at most 128 characters.</summary>
    public static bool IsEnvironmentName(string name) =>
        name.Length is > 0 and <= 128
        && (char.IsAsciiLetter(name[0]) || name[0] == '_')
        && name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_');
}
