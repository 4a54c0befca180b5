using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage;

/// <summary>A run as stored: its state, its result without outputs, and the outputs by reference.</summary>
public sealed record RunRecord
{
    public required string TenantId { get; init; }

    public required string RunId { get; init; }

    public required RunStatus Status { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>SHA-256 of the canonical request, to tell a replayed Idempotency-Key from a reused one.</summary>
    public string? RequestHash { get; init; }

    /// <summary>The result without <c>stdout</c>/<c>stderr</c> (those are in <see cref="Stdout"/>/<see cref="Stderr"/>).</summary>
    public RunResult? Result { get; init; }

    public Payload? Stdout { get; init; }

    public Payload? Stderr { get; init; }

    /// <summary>Where the run was provisioned (<c>provider/runtime/region</c>), once it was.</summary>
    public string? Placement { get; init; }

    /// <summary>Batch the run belongs to, if any.</summary>
    public string? BatchId { get; init; }
}
