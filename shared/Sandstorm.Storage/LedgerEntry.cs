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

    public decimal ProviderCost { get; init; }

    public decimal Fees { get; init; }

    public decimal Total { get; init; }

    public long DurationMs { get; init; }

    public long CpuMs { get; init; }

    public long PeakMemoryBytes { get; init; }

    /// <summary>End-to-end latency from submission to settlement, as the router should learn it.</summary>
    public long LatencyMs { get; init; }

    public DateTimeOffset SettledAt { get; init; }

    // Routing features of the workload, so the ledger alone can train the router.
    public string Language { get; init; } = "";

    public int CodeLength { get; init; }

    public double Cpu { get; init; }

    public int MemoryMiB { get; init; }

    public int TimeoutMs { get; init; }

    public IsolationLevel IsolationLevel { get; init; }

    public RoutingStrategy Strategy { get; init; }

    public double? PredictedCostUsd { get; init; }

    public double? PredictedLatencyMs { get; init; }
}
