using Sandstorm.Core.Contracts;

namespace Sandstorm.Security.Provenance;

/// <summary>Everything known about a settled run that its provenance attests.</summary>
public sealed record ProvenanceInput
{
    public required string RunId { get; init; }

    public required string TenantId { get; init; }

    /// <summary>Durable orchestration instance id.</summary>
    public string? InstanceId { get; init; }

    /// <summary>The request as asked, with the digests of its code and files (their contents are never needed here).</summary>
    public required RunIntent Intent { get; init; }

    public string Stdout { get; init; } = "";

    public string Stderr { get; init; } = "";

    public RouteDecision? Route { get; init; }

    public required string Provider { get; init; }

    public required string Runtime { get; init; }

    public string? Region { get; init; }

    public IsolationLevel IsolationLevel { get; init; }

    public DateTimeOffset StartedAt { get; init; }

    public DateTimeOffset CompletedAt { get; init; }

    public CostBreakdown? Cost { get; init; }

    public int? ExitCode { get; init; }

    public string? SecurityVerdict { get; init; }

    /// <summary>Shield's report of the run (coverage, findings, quarantine), for Shield runs and runs an alert named.</summary>
    public ShieldReport? Shield { get; init; }
}
