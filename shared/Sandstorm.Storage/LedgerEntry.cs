using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage;

/// <summary>One billed run. Exactly one per run: the row key is the run id.</summary>
public sealed record LedgerEntry
{
    public required string TenantId { get; init; }

    public required string RunId { get; init; }

    public required string Provider { get; init; }

    public required string Runtime { get; init; }

    public required string Region { get; init; }

    public required RunStatus Status { get; init; }

    /// <summary><see cref="RunKind"/> for a one-shot run, <see cref="SandboxKind"/> for a kept sandbox billed by its life.</summary>
    public string Kind { get; init; } = RunKind;

    public const string RunKind = "run";

    public const string SandboxKind = "sandbox";

    public decimal ProviderCost { get; init; }

    /// <summary>All of Sandstorm's fees: <see cref="AutopilotFee"/> + <see cref="ShieldFee"/>.</summary>
    public decimal Fees { get; init; }

    public decimal Total { get; init; }

    /// <summary>8% of <see cref="Savings"/> (cloud runs with a baseline).</summary>
    public decimal AutopilotFee { get; init; }

    /// <summary>$0.002 per monitored second (Shield runs with real coverage).</summary>
    public decimal ShieldFee { get; init; }

    /// <summary>The provider Autopilot's baseline priced the request on (the one the tenant would otherwise have used).</summary>
    public string? BaselineProvider { get; init; }

    /// <summary>Predicted cost of the request on <see cref="BaselineProvider"/>; null = no baseline (no Autopilot fee).</summary>
    public decimal? BaselineCost { get; init; }

    /// <summary>max(0, baseline − provider cost).</summary>
    public decimal Savings { get; init; }

    /// <summary>Seconds of execution Shield monitored and billed (null = no real coverage, no Shield fee).</summary>
    public double? MonitoredSeconds { get; init; }

    /// <summary>Shield's coverage of the run (full, partial, none); null for runs that were not Shield runs.</summary>
    public ShieldCoverageLevel? ShieldCoverage { get; init; }

    /// <summary>Grams of CO₂e the run emitted by the grid intensity of its region at the hour it ran (null = no intensity known).</summary>
    public double? CarbonGrams { get; init; }

    public SecurityTier SecurityTier { get; init; }

    public long DurationMs { get; init; }

    public long CpuMs { get; init; }

    public long PeakMemoryBytes { get; init; }

    /// <summary>End-to-end latency from submission to settlement, as the router should learn it.</summary>
    public long LatencyMs { get; init; }

    public DateTimeOffset SettledAt { get; init; }

    // Routing features of the workload, so the ledger alone can train the router.
    public string Language { get; init; } = "";

    public int CodeLength { get; init; }

    public int Requirements { get; init; }

    public int Files { get; init; }

    public string? PreferredRegion { get; init; }

    public double Cpu { get; init; }

    public int MemoryMiB { get; init; }

    public int TimeoutMs { get; init; }

    public IsolationLevel IsolationLevel { get; init; }

    public RoutingStrategy Strategy { get; init; }

    public double? PredictedCostUsd { get; init; }

    public double? PredictedLatencyMs { get; init; }
}
