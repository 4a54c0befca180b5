using Sandstorm.Core.Contracts;

namespace Sandstorm.Orchestrations.Batches;

// Small records between the batch orchestrator and its activities. The manifest and the results stay in Blob storage;
// only one chunk's run inputs (requests over 2 KiB by reference) ever pass through the orchestration's history.

/// <summary>Input of a <see cref="BatchOrchestrator"/> instance (instance id = batch id), carried across continue-as-new.</summary>
public sealed record BatchInput
{
    public required string TenantId { get; init; }

    public required string BatchId { get; init; }

    /// <summary>Blob (payloads container) holding the manifest, one run request per line.</summary>
    public required string Manifest { get; init; }

    public required int Total { get; init; }

    /// <summary>Most runs of this batch in flight at once (the tenant's limit, read from configuration when the batch was started).</summary>
    public required int MaxConcurrency { get; init; }

    /// <summary>Items per chunk (≤ 500); the orchestration continues as new after each chunk.</summary>
    public required int ChunkSize { get; init; }

    /// <summary>First item of the chunk this generation runs.</summary>
    public int Start { get; init; }

    /// <summary>Counts of the chunks already finished.</summary>
    public BatchCounts Counts { get; init; } = BatchCounts.Zero;

    /// <summary>Whether the batch has had its turn in the tenant's lane (set once, carried across continue-as-new).</summary>
    public bool Admitted { get; init; }
}

/// <summary>Where a batch's items are. <c>Queued</c> is derived: total minus the rest.</summary>
public sealed record BatchCounts(int Running, int Succeeded, int Failed, int Cancelled, decimal Cost)
{
    public static BatchCounts Zero { get; } = new(0, 0, 0, 0, 0m);

    public int Finished => Succeeded + Failed + Cancelled;

    public BatchCounts Add(RunStatus status, decimal cost) => status switch
    {
        RunStatus.Succeeded => this with { Succeeded = Succeeded + 1, Cost = Cost + cost },
        RunStatus.Cancelled => this with { Cancelled = Cancelled + 1, Cost = Cost + cost },
        _ => this with { Failed = Failed + 1, Cost = Cost + cost },
    };
}

/// <summary>The orchestration's custom status, read by <c>GET /v1/batches/{id}</c>.</summary>
public sealed record BatchProgress(int Total, BatchCounts Counts, bool Cancelling);

/// <summary>Input of <see cref="PrepareBatchChunkActivity"/>.</summary>
public sealed record BatchChunkInput(string TenantId, string BatchId, string Manifest, int Start, int Count);

/// <summary>One chunk's child runs, ready to start, and whether the batch was cancelled before it started.</summary>
public sealed record BatchChunk(IReadOnlyList<RunInput> Runs, bool CancelRequested);

/// <summary>What became of one item: started or not, and the child's outcome.</summary>
public sealed record BatchItemOutcome(int Index, string RunId, bool Started, RunStatus Status, decimal Cost, RunError? Error);

/// <summary>Input of <see cref="WriteBatchResultsActivity"/>: one chunk's outcomes, in input order.</summary>
public sealed record BatchResultsInput(string TenantId, string BatchId, int Chunk, IReadOnlyList<BatchItemOutcome> Items);

/// <summary>Input of <see cref="FinishBatchActivity"/>.</summary>
public sealed record FinishBatchInput(string TenantId, string BatchId, int Total, int Chunks, int Prepared, bool Cancelled);

/// <summary>What a batch orchestration returns when it ends.</summary>
public sealed record BatchOutcome(string BatchId, int Total, BatchCounts Counts, bool Cancelled, string Results);

/// <summary>External events and naming shared by the batch orchestrator, its activities and the API.</summary>
public static class BatchEvents
{
    /// <summary>Raised by <c>DELETE /v1/batches/{id}</c>.</summary>
    public const string Cancel = "cancel";

    /// <summary>Raised by the tenant's previous batch when it ends: this one may run now.</summary>
    public const string Turn = "turn";

    /// <summary>Run id (= child instance id) of item <paramref name="index"/>: deterministic, so a replay or redelivery starts nothing twice.</summary>
    public static string RunId(string batchId, int index) => $"{batchId}-{index:D5}";

    public static string ManifestBlob(string tenantId, string batchId) => $"{tenantId}/{batchId}/manifest.jsonl";

    public static string ResultsBlob(string tenantId, string batchId) => $"{tenantId}/{batchId}/results.jsonl";

    public static string ResultsPartPrefix(string tenantId, string batchId) => $"{tenantId}/{batchId}/results/";

    public static string ResultsPartBlob(string tenantId, string batchId, int chunk) => $"{ResultsPartPrefix(tenantId, batchId)}part-{chunk:D5}.jsonl";
}
