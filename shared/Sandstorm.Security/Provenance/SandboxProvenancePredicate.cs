using Sandstorm.Core.Contracts;

namespace Sandstorm.Security.Provenance;

/// <summary>
/// Predicate <c>https://sandstorm.dev/provenance/sandbox/v1</c>: a kept sandbox's whole life — where and how it ran, and
/// every command in order with its exit and the digests of its command line and outputs (docs/provenance.md).
/// </summary>
public sealed record SandboxProvenancePredicate
{
    public const string TypeV1 = "https://sandstorm.dev/provenance/sandbox/v1";

    public required string SandboxId { get; init; }

    public required string TenantId { get; init; }

    /// <summary>The sandbox as asked (no environment values, only names).</summary>
    public required SandboxProvenanceRequest Request { get; init; }

    public RouteDecision? Route { get; init; }

    public required ProvenanceExecution Execution { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? ReadyAt { get; init; }

    public required DateTimeOffset EndedAt { get; init; }

    /// <summary>How it ended: stopped, expired, lost, quarantined, failed.</summary>
    public required SandboxStatus Status { get; init; }

    public CostBreakdown? Cost { get; init; }

    public required IReadOnlyList<SandboxProvenanceCommand> Commands { get; init; }
}

/// <summary>The request of a kept sandbox as attested: intent and limits, environment variable names only.</summary>
public sealed record SandboxProvenanceRequest
{
    public IsolationLevel IsolationLevel { get; init; }

    public SecurityTier SecurityTier { get; init; }

    public RoutingStrategy Strategy { get; init; }

    public RunConstraints? Constraints { get; init; }

    public string? Template { get; init; }

    public double Cpu { get; init; }

    public int Memory { get; init; }

    public int Disk { get; init; }

    public IReadOnlyList<string> EnvironmentNames { get; init; } = [];

    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();
}

/// <summary>One command, in order: digests of its command line (<c>commands/{n}/cmd</c>) and outputs are the statement's subjects.</summary>
public sealed record SandboxProvenanceCommand
{
    public required int Sequence { get; init; }

    public string? Cwd { get; init; }

    public required string Status { get; init; }

    public int? ExitCode { get; init; }

    public int? Signal { get; init; }

    public DateTimeOffset StartedAt { get; init; }

    public DateTimeOffset? EndedAt { get; init; }

    public long StdoutBytes { get; init; }

    public long StderrBytes { get; init; }
}
