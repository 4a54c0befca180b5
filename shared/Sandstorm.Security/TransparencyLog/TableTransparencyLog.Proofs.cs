using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Azure;
using Azure.Data.Tables;
using Microsoft.Extensions.Logging;
using Sandstorm.Security.Signing;

namespace Sandstorm.Security.TransparencyLog;

/// <summary>The read side of <see cref="TableTransparencyLog"/>: entries, the signed head, inclusion and consistency proofs, and the in-memory tree kept in step with the stored head.</summary>
public sealed partial class TableTransparencyLog
{
    public async Task<LogEntry?> FindByRunAsync(string runId, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        var byRun = await table.GetEntityIfExistsAsync<TableEntity>(LogName, ByRunRowKey(runId), cancellationToken: cancellationToken);
        if (!byRun.HasValue || byRun.Value is null)
        {
            return null;
        }

        var index = byRun.Value.GetInt64("Index") ?? throw new LogIntegrityException($"run row of {runId} has no index");
        var entry = await table.GetEntityIfExistsAsync<TableEntity>(LogName, EntryRowKey(index), cancellationToken: cancellationToken);
        if (!entry.HasValue || entry.Value is null)
        {
            throw new LogIntegrityException($"run {runId} maps to index {index}, which has no entry");
        }

        var parsed = ToEntry(entry.Value);
        return parsed.RunId == runId
            ? parsed
            : throw new LogIntegrityException($"entry {index} belongs to run {parsed.RunId}, not {runId}");
    }

    public async Task<SignedTreeHead> GetSignedTreeHeadAsync(CancellationToken cancellationToken)
    {
        await AdvanceOverWrittenAsync(cancellationToken);
        var (size, root) = await SyncTreeAsync(cancellationToken);
        await _sthLock.WaitAsync(cancellationToken);
        try
        {
            // One signature per size: with Key Vault each signature is a billed, throttled call.
            if (_sth is { } cached && cached.TreeSize == size && cached.RootHash == Convert.ToBase64String(root))
            {
                return cached;
            }

            _sth = await SignedTreeHead.SignAsync(_signer, LogName, size, root, _time.GetUtcNow(), cancellationToken);
            return _sth;
        }
        finally
        {
            _sthLock.Release();
        }
    }

    public async Task<InclusionProof> GetInclusionProofAsync(long index, long treeSize, CancellationToken cancellationToken)
    {
        var (size, _) = await SyncTreeAsync(cancellationToken);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(treeSize, size);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, treeSize);
        await _treeLock.WaitAsync(cancellationToken);
        try
        {
            return new InclusionProof(index, treeSize, _tree.InclusionProof(index, treeSize).Select(Convert.ToBase64String).ToList());
        }
        finally
        {
            _treeLock.Release();
        }
    }

    public async Task<ConsistencyProof> GetConsistencyProofAsync(long fromSize, long toSize, CancellationToken cancellationToken)
    {
        var (size, _) = await SyncTreeAsync(cancellationToken);
        ArgumentOutOfRangeException.ThrowIfNegative(fromSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(fromSize, toSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(toSize, size);
        await _treeLock.WaitAsync(cancellationToken);
        try
        {
            return new ConsistencyProof(fromSize, toSize, _tree.ConsistencyProof(fromSize, toSize).Select(Convert.ToBase64String).ToList());
        }
        finally
        {
            _treeLock.Release();
        }
    }

    public async Task<string> GetRootHashAsync(long treeSize, CancellationToken cancellationToken)
    {
        var (size, _) = await SyncTreeAsync(cancellationToken);
        ArgumentOutOfRangeException.ThrowIfNegative(treeSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(treeSize, size);
        await _treeLock.WaitAsync(cancellationToken);
        try
        {
            return Convert.ToBase64String(_tree.Root(treeSize));
        }
        finally
        {
            _treeLock.Release();
        }
    }

    public async IAsyncEnumerable<LogEntry> ReadEntriesAsync(long fromIndex, long toIndex, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (toIndex <= fromIndex)
        {
            yield break;
        }

        var table = await TableAsync(cancellationToken);
        var from = EntryRowKey(fromIndex);
        var to = EntryRowKey(toIndex);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {LogName} and RowKey ge {from} and RowKey lt {to}");
        await foreach (var entity in table.QueryAsync<TableEntity>(filter, maxPerPage: PageSize, cancellationToken: cancellationToken))
        {
            yield return ToEntry(entity);
        }
    }

    /// <summary>
    /// Recomputes the tree from every stored entry, ignoring the in-memory cache, and checks it against the head.
    /// Returns the problems found (empty when the stored log is consistent).
    /// </summary>
    public async Task<IReadOnlyList<string>> VerifyStoredTreeAsync(CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var table = await TableAsync(cancellationToken);
        var head = await ReadHeadAsync(table, cancellationToken);
        var tree = new MerkleTree();
        await foreach (var entry in ReadEntriesAsync(0, head.Size, cancellationToken))
        {
            if (entry.Index != tree.Count)
            {
                problems.Add($"entry {tree.Count} is missing");
                return problems;
            }

            tree.AppendLeafHash(entry.LeafHash);
        }

        if (tree.Count != head.Size)
        {
            problems.Add($"head says {head.Size} entries, storage holds {tree.Count}");
        }
        else if (!tree.Root(head.Size).AsSpan().SequenceEqual(head.Root))
        {
            problems.Add($"stored entries do not hash to the head's root at size {head.Size}");
        }

        if (_sth is { } signed && signed.TreeSize <= tree.Count
            && Convert.ToBase64String(tree.Root(signed.TreeSize)) != signed.RootHash)
        {
            problems.Add($"stored entries do not hash to the signed root at size {signed.TreeSize}");
        }

        return problems;
    }

    // Brings the in-memory tree up to the stored head and checks the head's root against the leaves.
    private async Task<(long Size, byte[] Root)> SyncTreeAsync(CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        var head = await ReadHeadAsync(table, cancellationToken);
        SetKnownHeadSize(head.Size);
        await _treeLock.WaitAsync(cancellationToken);
        try
        {
            if (_tree.Count < head.Size)
            {
                await foreach (var entry in ReadEntriesAsync(_tree.Count, head.Size, cancellationToken))
                {
                    if (entry.Index != _tree.Count)
                    {
                        throw new LogIntegrityException($"entry {_tree.Count} of log {LogName} is missing below the head");
                    }

                    _tree.AppendLeafHash(entry.LeafHash);
                }

                if (_tree.Count < head.Size)
                {
                    throw new LogIntegrityException($"log {LogName} holds {_tree.Count} entries but its head says {head.Size}");
                }
            }

            var root = _tree.Root(head.Size);
            if (!root.AsSpan().SequenceEqual(head.Root))
            {
                throw new LogIntegrityException($"the leaves of log {LogName} do not hash to its head's root at size {head.Size}: a stored entry or the head was rewritten");
            }

            return (head.Size, root);
        }
        finally
        {
            _treeLock.Release();
        }
    }
}
