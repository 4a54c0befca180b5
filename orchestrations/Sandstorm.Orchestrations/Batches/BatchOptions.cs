namespace Sandstorm.Orchestrations.Batches;

/// <summary>Tunables of batch jobs (section <c>Sandstorm:Batches</c>).</summary>
public sealed class BatchOptions
{
    public const string Section = "Sandstorm:Batches";

    /// <summary>Hard ceiling on items per batch.</summary>
    public const int MaxItemsLimit = 10_000;

    /// <summary>Hard ceiling on items per chunk: keeps one generation's history small.</summary>
    public const int MaxChunkSize = 500;

    /// <summary>Most runs of one batch in flight at once.</summary>
    public int MaxConcurrentRunsPerTenant { get; set; } = 16;

    /// <summary>Items per chunk; the orchestration continues as new between chunks.</summary>
    public int ChunkSize { get; set; } = MaxChunkSize;

    /// <summary>Most items a batch may hold (at most <see cref="MaxItemsLimit"/>).</summary>
    public int MaxItems { get; set; } = MaxItemsLimit;

    public int EffectiveConcurrency => Math.Clamp(MaxConcurrentRunsPerTenant, 1, 1000);

    public int EffectiveChunkSize => Math.Clamp(ChunkSize, 1, MaxChunkSize);

    public int EffectiveMaxItems => Math.Clamp(MaxItems, 1, MaxItemsLimit);
}
