using Sandstorm.Core.Contracts;

namespace Sandstorm.Api.Batches;

/// <summary>
/// A message on the batch queue (Storage queue or Service Bus; schema in docs/batches.md). Either a manifest reference
/// (<c>tenantId</c>, <c>batchId</c>, <c>manifest</c>) or a single run (<c>tenantId</c>, <c>request</c>, optional <c>idempotencyKey</c>).
/// </summary>
public sealed record BatchMessage
{
    public string? TenantId { get; init; }

    public string? BatchId { get; init; }

    /// <summary>Blob name, in the payloads container, of a JSON Lines (or JSON array) manifest under <c>{tenantId}/</c>.</summary>
    public string? Manifest { get; init; }

    public RunRequest? Request { get; init; }

    /// <summary>For a single run: names the run across redeliveries; defaults to the queue's message id.</summary>
    public string? IdempotencyKey { get; init; }
}

/// <summary>What became of a message: accepted (started, or already started), or poison with the reason.</summary>
public sealed record IntakeResult(bool Accepted, string Detail)
{
    public static IntakeResult Ok(string detail) => new(true, detail);

    public static IntakeResult Poison(string reason) => new(false, reason);
}
