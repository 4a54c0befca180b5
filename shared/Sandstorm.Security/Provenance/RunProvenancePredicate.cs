using Sandstorm.Core.Contracts;

namespace Sandstorm.Security.Provenance;

/// <summary>Predicate <c>https://sandstorm.dev/provenance/run/v1</c>: where and how a run executed (docs/provenance.md).</summary>
public sealed record RunProvenancePredicate
{
    /// <summary>The predicate type URI.</summary>
    public const string TypeV1 = "https://sandstorm.dev/provenance/run/v1";

    public required string RunId { get; init; }

    public required string TenantId { get; init; }

    /// <summary>Durable orchestration instance that ran it.</summary>
    public string? InstanceId { get; init; }

    public required ProvenanceRequest Request { get; init; }

    public RouteDecision? Route { get; init; }

    public required ProvenanceExecution Execution { get; init; }

    public required ProvenanceTimings Timings { get; init; }

    public CostBreakdown? Cost { get; init; }

    /// <summary>Verdict of security monitoring (e.g. clean, flagged, quarantined).</summary>
    public string? SecurityVerdict { get; init; }

    /// <summary>
    /// Shield's monitoring of the run: coverage (full, partial, none, with the reason), seconds watched, every finding
    /// (rule, priority, output, event time) and, when it quarantined, the finding that did with its latency. Absent for
    /// runs that were not Shield runs and that no alert named.
    /// </summary>
    public ShieldReport? Shield { get; init; }
}

/// <summary>The request as asked, without code or file contents (those are subjects, by digest) and without environment values (they may be secrets).</summary>
public sealed record ProvenanceRequest
{
    public required string Language { get; init; }

    /// <summary>Input file paths; their digests are the <c>files/&lt;path&gt;</c> subjects.</summary>
    public IReadOnlyList<string> Files { get; init; } = [];

    /// <summary>Names of environment variables set; values are never recorded.</summary>
    public IReadOnlyList<string> EnvironmentNames { get; init; } = [];

    public double Cpu { get; init; }

    public int Memory { get; init; }

    public int Timeout { get; init; }

    public IsolationLevel IsolationLevel { get; init; }

    public string? RuntimePreference { get; init; }

    public SecurityTier SecurityTier { get; init; }

    public RoutingStrategy Strategy { get; init; }

    public RunConstraints? Constraints { get; init; }
}

/// <summary>Where the run executed and how it ended.</summary>
public sealed record ProvenanceExecution
{
    public required string Provider { get; init; }

    public required string Runtime { get; init; }

    public string? Region { get; init; }

    /// <summary>Isolation level the runtime actually gave.</summary>
    public IsolationLevel IsolationLevel { get; init; }

    public int? ExitCode { get; init; }
}

/// <summary>When the run executed.</summary>
public sealed record ProvenanceTimings(DateTimeOffset StartedAt, DateTimeOffset CompletedAt, long DurationMs);
