namespace Sandstorm.Storage;

/// <summary>Where a batch is in its life.</summary>
public enum BatchStatus
{
    Queued,
    Running,
    Completed,
    Cancelling,
    Cancelled,
}

/// <summary>A batch as stored: who owns it, where its manifest and results live, and whether a cancel was asked for.</summary>
public sealed record BatchRecord
{
    public required string TenantId { get; init; }

    public required string BatchId { get; init; }

    public required BatchStatus Status { get; init; }

    /// <summary>Number of run requests in the manifest.</summary>
    public required int Total { get; init; }

    /// <summary>Blob (payloads container) holding the manifest: one run request per line.</summary>
    public required string Manifest { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>SHA-256 of the manifest, to tell a replayed Idempotency-Key from a reused one.</summary>
    public string? RequestHash { get; init; }
}
