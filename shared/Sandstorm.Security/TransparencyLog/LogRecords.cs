namespace Sandstorm.Security.TransparencyLog;

/// <summary>Audit path of one leaf in the tree of <see cref="TreeSize"/> leaves; hashes base64, leaf side first.</summary>
public sealed record InclusionProof(long LeafIndex, long TreeSize, IReadOnlyList<string> Hashes);

/// <summary>Proof that the tree of <see cref="ToSize"/> leaves extends the tree of <see cref="FromSize"/> leaves; hashes base64.</summary>
public sealed record ConsistencyProof(long FromSize, long ToSize, IReadOnlyList<string> Hashes);

/// <summary>Result of appending a leaf: its index, and whether it was there already (same run id).</summary>
public sealed record LogAppendResult(long Index, bool AlreadyPresent);

/// <summary>A stored log entry.</summary>
public sealed record LogEntry(long Index, string RunId, string TenantId, byte[] LeafHash, string BlobName, string KeyId);

/// <summary>Thrown when stored log state contradicts itself (a rewritten entry, a head whose root the leaves do not give).</summary>
public sealed class LogIntegrityException(string message) : Exception(message);
