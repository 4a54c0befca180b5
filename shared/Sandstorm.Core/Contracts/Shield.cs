namespace Sandstorm.Core.Contracts;

/// <summary>How much of a sandbox's behaviour Shield's runtime monitor saw (docs/shield.md, "Coverage per runtime").</summary>
public enum ShieldCoverageLevel
{
    /// <summary>Nothing was monitored (no eBPF, not root, a cloud without it...): such a run pays no Shield fee.</summary>
    None,

    /// <summary>Some events were seen, not all (the reason says which are missing).</summary>
    Partial,

    /// <summary>Every event of the documented set was seen.</summary>
    Full,
}

/// <summary>
/// What Shield needs to watch one execution (<see cref="ExecutionSpec.Shield"/>): set by the control plane for a run whose
/// <c>securityTier</c> is <c>shield</c>; an execution without it is not watched.
/// </summary>
public sealed record ShieldSpec
{
    /// <summary>The tenant whose rules apply (and only its rules: another tenant's never see this sandbox).</summary>
    public required string TenantId { get; init; }

    /// <summary>The tenant's own rule file (Falco's YAML, validated when uploaded); null: the default rules only.</summary>
    public string? Rules { get; init; }

    /// <summary>Falco priority at or above which a finding kills the sandbox (<c>critical</c> unless the tenant chose another).</summary>
    public string QuarantineThreshold { get; init; } = "critical";

    /// <summary>Whether the sandbox may reach the network (Shield's <c>shield.egress</c>); never on the local and edge runtimes.</summary>
    public bool EgressAllowed { get; init; }
}

/// <summary>What Shield saw of one execution: its coverage, how long it watched, what it found and whether it quarantined.</summary>
public sealed record ShieldReport
{
    public ShieldCoverageLevel Coverage { get; init; }

    /// <summary>Why the coverage is not full (what is not seen), or why there was none.</summary>
    public string? CoverageReason { get; init; }

    /// <summary>Milliseconds of execution under watch (0 without coverage): what the Shield fee is charged on.</summary>
    public long MonitoredMs { get; init; }

    /// <summary>Events of the sandbox the rules were evaluated against.</summary>
    public long Events { get; init; }

    /// <summary>True when a finding at or above the threshold killed every process of the sandbox.</summary>
    public bool Quarantined { get; init; }

    /// <summary>Every finding, in the order made; the one that quarantined carries its latency.</summary>
    public IReadOnlyList<ShieldFinding> Findings { get; init; } = [];

    /// <summary>The finding that quarantined the sandbox, if one did.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public ShieldFinding? QuarantineFinding => Findings.FirstOrDefault(f => f.Quarantined);
}

/// <summary>A rule that fired on a sandbox (Shield's own engine, or a customer's Falco alert), as results and stores carry it.</summary>
public sealed record ShieldFinding
{
    /// <summary>Stable id: a Falco alert's <c>uuid</c> or a digest of it; for Shield's own findings the sandbox and a sequence number.</summary>
    public string? Id { get; init; }

    public required string Rule { get; init; }

    /// <summary>Falco priority, lower-case (<c>critical</c>, <c>warning</c>...).</summary>
    public required string Priority { get; init; }

    /// <summary>The rule's output, filled in from the event.</summary>
    public required string Output { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    /// <summary>When the event that fired the rule happened.</summary>
    public DateTimeOffset EventTime { get; init; }

    /// <summary>When the finding was made (or the alert received).</summary>
    public DateTimeOffset DetectedAt { get; init; }

    /// <summary><c>shield</c> (the runtime monitor) or <c>falco</c> (an ingested alert).</summary>
    public string Detector { get; init; } = "shield";

    /// <summary>Tenant whose own rule fired; null for a default rule (or a Falco alert).</summary>
    public string? TenantId { get; init; }

    /// <summary>Host-side id of the sandbox (execution) the event belongs to.</summary>
    public string? SandboxId { get; init; }

    /// <summary>Fields the output names, by Falco's names; a null value was not available.</summary>
    public IReadOnlyDictionary<string, string?>? OutputFields { get; init; }

    /// <summary>True for the finding that killed the sandbox.</summary>
    public bool Quarantined { get; init; }

    /// <summary>From the event (or the alert's arrival) to the last process of the sandbox gone, in milliseconds.</summary>
    public double? QuarantineLatencyMs { get; init; }
}
