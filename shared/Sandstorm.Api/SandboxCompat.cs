using Sandstorm.Core.Contracts;

namespace Sandstorm.Api;

/// <summary>Body of the v1 SDK's <c>POST /v1/sandboxes/run</c>: a spec and optional constraints.</summary>
public sealed record SandboxRunRequest
{
    public RunRequest? Spec { get; init; }

    public RunConstraints? Constraints { get; init; }
}

/// <summary>What the v1 SDK expects back from <c>POST /v1/sandboxes/run</c>.</summary>
public sealed record SandboxResult
{
    public required string Id { get; init; }

    public required RunStatus Status { get; init; }

    public string Stdout { get; init; } = "";

    public string Stderr { get; init; } = "";

    public int? ExitCode { get; init; }

    /// <summary>Execution time in milliseconds.</summary>
    public long Duration { get; init; }

    public string? Provider { get; init; }

    public string? Runtime { get; init; }

    /// <summary>Total cost in USD.</summary>
    public decimal Cost { get; init; }

    public bool Truncated { get; init; }

    public RunError? Error { get; init; }

    public static SandboxResult From(RunResult r) => new()
    {
        Id = r.Id,
        Status = r.Status,
        Stdout = r.Stdout ?? "",
        Stderr = r.Stderr ?? "",
        ExitCode = r.ExitCode,
        Duration = r.Duration ?? 0,
        Provider = r.Provider,
        Runtime = r.Runtime,
        Cost = r.Cost?.Total ?? 0,
        Truncated = r.Truncated,
        Error = r.Error,
    };
}
