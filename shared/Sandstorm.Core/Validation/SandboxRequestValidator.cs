using System.Text;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;

namespace Sandstorm.Core.Validation;

/// <summary>Checks kept-sandbox requests (create, command, timeout) against Sandstorm's limits before anything is persisted.</summary>
public static class SandboxRequestValidator
{
    public const int DefaultLifetimeSeconds = 300;
    public const int MaxMetadata = 64;
    public const int MaxCommandBytes = 1024 * 1024;
    public const int DefaultCommandTimeoutMs = 60_000;
    public const int MinDiskMiB = 16;
    public const int MaxDiskMiB = 10 * 1024;

    public static void ThrowIfInvalid(SandboxCreateRequest? request)
    {
        var errors = new Dictionary<string, List<string>>();
        void Add(string field, string message) => (errors.TryGetValue(field, out var list) ? list : errors[field] = []).Add(message);
        if (request is null)
        {
            Add("body", "a sandbox request is required");
        }
        else
        {
            if (!Enum.IsDefined(request.IsolationLevel))
            {
                Add("isolationLevel", "isolationLevel must be standard, strong or maximum");
            }
            else if (request.IsolationLevel == IsolationLevel.None)
            {
                Add("isolationLevel", "a kept sandbox is isolated at least at 'standard' (its commands run in namespaces and under seccomp)");
            }

            if (!Enum.IsDefined(request.Strategy))
            {
                Add("strategy", "strategy must be optimize_cost, optimize_latency, balanced or optimize_carbon");
            }

            if (!Enum.IsDefined(request.SecurityTier))
            {
                Add("securityTier", "securityTier must be basic or shield");
            }

            if (double.IsNaN(request.Cpu) || request.Cpu < RunRequestValidator.MinCpu || request.Cpu > RunRequestValidator.MaxCpu)
            {
                Add("cpu", $"cpu must be between {RunRequestValidator.MinCpu} and {RunRequestValidator.MaxCpu}");
            }

            if (request.Memory is < RunRequestValidator.MinMemoryMiB or > RunRequestValidator.MaxMemoryMiB)
            {
                Add("memory", $"memory must be between {RunRequestValidator.MinMemoryMiB} and {RunRequestValidator.MaxMemoryMiB} MiB");
            }

            if (request.Disk is < MinDiskMiB or > MaxDiskMiB)
            {
                Add("disk", $"disk must be between {MinDiskMiB} and {MaxDiskMiB} MiB");
            }

            if (request.Timeout is < 1 or > 7 * 24 * 3600)
            {
                Add("timeout", "timeout is the sandbox's lifetime in seconds, at least 1");
            }

            if (request.Template is { Length: > 128 })
            {
                Add("template", "template is at most 128 characters");
            }

            if (request.RuntimePreference is { Length: > 64 })
            {
                Add("runtimePreference", "runtimePreference is at most 64 characters");
            }

            CheckMetadata(request.Metadata, Add);
            CheckEnvironment("envVars", request.EnvVars, Add);
            if (request.Constraints is { } c)
            {
                RunRequestValidator.ValidateConstraints(c, Add);
            }
        }

        Throw(errors);
    }

    public static void ThrowIfInvalid(CommandRequest? request)
    {
        var errors = new Dictionary<string, List<string>>();
        void Add(string field, string message) => (errors.TryGetValue(field, out var list) ? list : errors[field] = []).Add(message);
        if (request is null)
        {
            Add("body", "a command is required");
        }
        else
        {
            if (string.IsNullOrWhiteSpace(request.Cmd))
            {
                Add("cmd", "cmd is required");
            }
            else if (Encoding.UTF8.GetByteCount(request.Cmd) > MaxCommandBytes || request.Cmd.Contains('\0'))
            {
                Add("cmd", $"cmd is at most {MaxCommandBytes} bytes, without NUL");
            }

            if (request.Cwd is { } cwd && (cwd.Length is 0 or > 4096 || cwd.Contains('\0')))
            {
                Add("cwd", "cwd is a path of 1 to 4096 characters");
            }

            if (request.Timeout is < 0 or > 7 * 24 * 3600 * 1000)
            {
                Add("timeout", "timeout is the command's limit in milliseconds (0: until the sandbox ends)");
            }

            CheckEnvironment("env", request.Env, Add);
        }

        Throw(errors);
    }

    private static void CheckMetadata(IReadOnlyDictionary<string, string>? metadata, Action<string, string> add)
    {
        if (metadata is null)
        {
            return;
        }

        if (metadata.Count > MaxMetadata)
        {
            add("metadata", $"at most {MaxMetadata} metadata entries");
        }

        foreach (var (key, value) in metadata)
        {
            if (key.Length is 0 or > 128 || value is null || value.Length > 512)
            {
                add("metadata", "metadata keys are 1-128 characters and values (not null) at most 512");
                return;
            }
        }
    }

    private static void CheckEnvironment(string field, IReadOnlyDictionary<string, string>? env, Action<string, string> add)
    {
        if (env is null)
        {
            return;
        }

        if (env.Count > RunRequestValidator.MaxEnvironmentVariables)
        {
            add(field, $"at most {RunRequestValidator.MaxEnvironmentVariables} variables");
        }

        foreach (var (name, value) in env)
        {
            if (!RunRequestValidator.IsEnvironmentName(name))
            {
                add(field, $"'{name}' is not a valid variable name");
            }
            else if (value is null || value.Length > 32 * 1024 || value.Contains('\0'))
            {
                add(field, $"the value of '{name}' must be a string of at most 32 KiB, without NUL");
            }
        }
    }

    private static void Throw(Dictionary<string, List<string>> errors)
    {
        if (errors.Count > 0)
        {
            throw new SandstormException(
                ErrorCodes.ValidationFailed,
                string.Join("; ", errors.SelectMany(e => e.Value)),
                400,
                errors.ToDictionary(e => e.Key, e => e.Value.ToArray()));
        }
    }
}
