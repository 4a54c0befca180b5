namespace Sandstorm.Security.TransparencyLog;

/// <summary>Append-only, Merkle-tree transparency log of provenance envelopes (RFC 6962/9162 hashing).</summary>
public interface ITransparencyLog
{
    /// <summary>Name of the log (signed into every tree head).</summary>
    string LogName { get; }

    /// <summary>
    /// Appends the leaf once per run and returns once it is stored; a second append for the same run returns the first
    /// one's index and appends nothing. The head is brought over it soon after, and any tree head read after this
    /// returns covers it.
    /// </summary>
    Task<LogAppendResult> AppendAsync(LogAppend append, CancellationToken cancellationToken);

    /// <summary>The entry of a run, or null.</summary>
    Task<LogEntry?> FindByRunAsync(string runId, CancellationToken cancellationToken);

    /// <summary>The current head, first brought over every entry stored so far, signed (re-signed only when the size changed).</summary>
    Task<SignedTreeHead> GetSignedTreeHeadAsync(CancellationToken cancellationToken);

    /// <summary>Inclusion proof of <paramref name="index"/> in the tree of <paramref name="treeSize"/> leaves (≤ head size).</summary>
    Task<InclusionProof> GetInclusionProofAsync(long index, long treeSize, CancellationToken cancellationToken);

    /// <summary>Consistency proof between two sizes; <see cref="ArgumentOutOfRangeException"/> unless 0 ≤ from ≤ to ≤ head size.</summary>
    Task<ConsistencyProof> GetConsistencyProofAsync(long fromSize, long toSize, CancellationToken cancellationToken);

    /// <summary>Entries with index in [from, to), in index order.</summary>
    IAsyncEnumerable<LogEntry> ReadEntriesAsync(long fromIndex, long toIndex, CancellationToken cancellationToken);

    /// <summary>
    /// Base64 root hash of the tree of the first <paramref name="treeSize"/> leaves (≤ head size): the log as it stood at
    /// that size, which a consistency proof from that size then ties to a later signed head.
    /// </summary>
    Task<string> GetRootHashAsync(long treeSize, CancellationToken cancellationToken) =>
        throw new NotSupportedException($"{GetType().Name} does not give the root of an earlier size");
}

/// <summary>What to append: the leaf bytes (the canonical envelope) and what to remember about it.</summary>
public sealed record LogAppend(string RunId, string TenantId, byte[] Leaf, string BlobName, string KeyId);
