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

/// <summary>
/// The transparency log kept in one Azure Tables partition (= log name):
/// rows <c>000000000000</c>… hold entries (leaf hash, envelope blob name), <c>byrun-…</c> rows map a run to its index,
/// and <c>head</c> holds size, root and frontier (the complete-subtree hashes along the right edge).
/// Appends claim the next index by inserting entry and run row in one transaction; the head only ever advances over
/// the contiguous prefix of entries, with ETag concurrency, from its stored frontier — so no append needs the whole tree.
/// Proofs come from an in-memory <see cref="MerkleTree"/> rebuilt from the stored leaves and checked against the head.
/// This file holds the state and the write path (group-committed appends, the head advancing over them); reads, the
/// tree's sync and the proofs are in <c>TableTransparencyLog.Proofs.cs</c>.
/// </summary>
public sealed partial class TableTransparencyLog : ITransparencyLog
{
    private const string HeadRow = "head";
    private const string ByRunPrefix = "byrun-";
    private const int IndexDigits = 12;
    private const int PageSize = 1000;
    private const int MaxBatch = 50;

    private readonly TableServiceClient _tables;
    private readonly IProvenanceSigner _signer;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TransparencyLogOptions _options;
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private readonly SemaphoreSlim _claimLock = new(1, 1);
    private readonly SemaphoreSlim _advanceLock = new(1, 1);
    private readonly SemaphoreSlim _treeLock = new(1, 1);
    private readonly SemaphoreSlim _sthLock = new(1, 1);
    private readonly MerkleTree _tree = new();
    private readonly System.Collections.Concurrent.ConcurrentQueue<PendingAppend> _queue = new();
    private TableClient? _table;
    private long _knownHeadSize;
    private long _lastClaimed = -1;
    private SignedTreeHead? _sth;

    public TableTransparencyLog(TableServiceClient tables, IProvenanceSigner signer, TimeProvider time, ILogger<TableTransparencyLog> logger, TransparencyLogOptions? options = null)
    {
        _tables = tables;
        _signer = signer;
        _time = time;
        _logger = logger;
        _options = options ?? new TransparencyLogOptions();
    }

    public string LogName => _options.LogName;

    /// <summary>Row key of entry <paramref name="index"/>: zero-padded so that row order is index order.</summary>
    public static string EntryRowKey(long index) => index.ToString("D" + IndexDigits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    /// <summary>Row key of a run's index row (hashed: run ids may hold characters row keys forbid).</summary>
    public static string ByRunRowKey(string runId) => ByRunPrefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(runId)));

    public async Task<LogAppendResult> AppendAsync(LogAppend append, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);

        // No look-up first: a run already logged (a retried settle) makes its run row conflict in the transaction, which
        // resolves to the existing index; either way the head is then brought over the entry (its writer may have died
        // in between).
        // Group commit: appends queue up, and whoever holds the claim lock writes up to 50 of them (100 rows, the
        // entity-group transaction limit) in one transaction — a per-append transaction is the bottleneck otherwise.
        var pending = new PendingAppend(append, MerkleHash.Leaf(append.Leaf));
        _queue.Enqueue(pending);
        while (!pending.Completion.Task.IsCompleted)
        {
            await _claimLock.WaitAsync(cancellationToken);
            try
            {
                if (!pending.Completion.Task.IsCompleted)
                {
                    await CommitQueuedAsync(table, cancellationToken);
                }
            }
            finally
            {
                _claimLock.Release();
            }
        }

        // The entry is stored: the head is brought over it in the background (one advance covers every append that
        // landed meanwhile), off the settle's critical path. A tree head read afterwards covers it (see
        // GetSignedTreeHeadAsync); if this process dies first, the next advance of any process does it.
        var result = await pending.Completion.Task;
        _ = AdvanceInBackgroundAsync(result.Index);
        return result;
    }

    private async Task AdvanceInBackgroundAsync(long index)
    {
        try
        {
            await EnsureHeadCoversAsync(index, CancellationToken.None);
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Head of log {Log} not yet over entry {Index}; the next advance will cover it", LogName, index);
        }
    }

    // Advances the stored head over every entry written so far, up to the first gap.
    private async Task AdvanceOverWrittenAsync(CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        await _advanceLock.WaitAsync(cancellationToken);
        try
        {
            while (await AdvanceHeadOnceAsync(table, cancellationToken))
            {
            }
        }
        finally
        {
            _advanceLock.Release();
        }
    }

    // Claims indexes for queued appends. Claims are serialised per process and each batch starts at the lowest index
    // not known to be taken, so a failed claim leaves no index behind. Other processes race on the same rows; a
    // transaction (entry rows + run rows) takes its indexes whole or not at all.
    private async Task CommitQueuedAsync(TableClient table, CancellationToken cancellationToken)
    {
        var work = new List<PendingAppend>();
        while (work.Count < MaxBatch && _queue.TryDequeue(out var queued))
        {
            work.Add(queued);
        }

        var start = _lastClaimed < 0
            ? (await ReadHeadAsync(table, cancellationToken)).Size
            : Math.Max(_lastClaimed + 1, Volatile.Read(ref _knownHeadSize));
        var limit = MaxBatch;
        try
        {
            while (work.Count > 0)
            {
                // One row per run in a transaction: a second append of the same run waits for the next round,
                // where its run row conflicts and it resolves to the first one's index.
                var runs = new HashSet<string>(StringComparer.Ordinal);
                var batch = work.Where(p => runs.Add(p.Append.RunId)).Take(limit).ToList();
                var actions = new List<TableTransactionAction>(batch.Count * 2);
                for (var j = 0; j < batch.Count; j++)
                {
                    var a = batch[j].Append;
                    actions.Add(new(TableTransactionActionType.Add, new TableEntity(LogName, ByRunRowKey(a.RunId))
                    {
                        ["RunId"] = a.RunId,
                        ["Index"] = start + j,
                    }));
                    actions.Add(new(TableTransactionActionType.Add, new TableEntity(LogName, EntryRowKey(start + j))
                    {
                        ["RunId"] = a.RunId,
                        ["TenantId"] = a.TenantId,
                        ["LeafHash"] = batch[j].LeafHash,
                        ["BlobName"] = a.BlobName,
                        ["KeyId"] = a.KeyId,
                    }));
                }

                try
                {
                    await table.SubmitTransactionAsync(actions, cancellationToken);
                }
                catch (TableTransactionFailedException ex) when (ex.Status == (int)HttpStatusCode.Conflict)
                {
                    var failed = ex.FailedTransactionActionIndex;
                    if (failed is null && batch.Count > 1)
                    {
                        // The service did not say which row conflicted: find out one append at a time.
                        limit = 1;
                        continue;
                    }

                    var j = (failed ?? 0) / 2;
                    var raced = await FindByRunAsync(batch[j].Append.RunId, cancellationToken);
                    if (raced is not null)
                    {
                        // Another worker logged this run meanwhile: it is done, nothing of ours landed.
                        batch[j].Completion.TrySetResult(new LogAppendResult(raced.Index, AlreadyPresent: true));
                        work.Remove(batch[j]);
                    }
                    else if (j == 0)
                    {
                        // Another process took this index: it is known taken, go on from the next.
                        _lastClaimed = start;
                        start++;
                    }
                    else
                    {
                        // Index start + j is taken: the appends before it still fit below it.
                        limit = j;
                    }

                    continue;
                }

                for (var j = 0; j < batch.Count; j++)
                {
                    batch[j].Completion.TrySetResult(new LogAppendResult(start + j, AlreadyPresent: false));
                }

                work.RemoveAll(batch.Contains);
                _lastClaimed = start + batch.Count - 1;
                start += batch.Count;
                limit = MaxBatch;
            }
        }
        catch (OperationCanceledException)
        {
            // Our caller gave up; the others' appends go back for the next committer.
            foreach (var left in work)
            {
                _queue.Enqueue(left);
            }

            throw;
        }
        catch (Exception ex)
        {
            // Nothing of this batch is known to have landed; each caller sees the failure (a retry finds its run row
            // if the transaction did commit after all).
            foreach (var left in work)
            {
                left.Completion.TrySetException(ex);
            }
        }
    }

    // Makes sure the stored head covers index, advancing it over the contiguous prefix of entries when needed.
    private async Task EnsureHeadCoversAsync(long index, CancellationToken cancellationToken)
    {
        var table = await TableAsync(cancellationToken);
        var deadline = _time.GetUtcNow() + _options.HeadWaitTimeout;
        var delay = TimeSpan.FromMilliseconds(5);
        while (Volatile.Read(ref _knownHeadSize) <= index)
        {
            var progressed = false;
            await _advanceLock.WaitAsync(cancellationToken);
            try
            {
                // One advancer per process; the others wait here and usually find their entry covered.
                if (Volatile.Read(ref _knownHeadSize) <= index)
                {
                    progressed = await AdvanceHeadOnceAsync(table, cancellationToken);
                }
            }
            finally
            {
                _advanceLock.Release();
            }

            if (Volatile.Read(ref _knownHeadSize) > index)
            {
                return;
            }

            if (!progressed)
            {
                if (_time.GetUtcNow() > deadline)
                {
                    throw new TimeoutException(
                        $"log head stuck at {Volatile.Read(ref _knownHeadSize)}: entry {Volatile.Read(ref _knownHeadSize)} is not written yet, so entry {index} cannot be covered");
                }

                // A lower index is claimed by a writer that has not inserted yet (another process): wait for it.
                await Task.Delay(delay, _time, cancellationToken);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 200));
            }
        }
    }

    // Reads the head and extends it over the entries that follow it without a gap. True when the head moved
    // (by us or by someone else whose update beat ours).
    private async Task<bool> AdvanceHeadOnceAsync(TableClient table, CancellationToken cancellationToken)
    {
        var head = await ReadHeadAsync(table, cancellationToken);
        var before = Volatile.Read(ref _knownHeadSize);
        SetKnownHeadSize(head.Size);

        var frontier = head.Frontier.ToList();
        var size = head.Size;
        await foreach (var entry in ReadEntriesAsync(head.Size, head.Size + PageSize, cancellationToken))
        {
            if (entry.Index != size)
            {
                break;
            }

            MerkleHash.AppendToFrontier(frontier, size, entry.LeafHash);
            size++;
        }

        if (size == head.Size)
        {
            return head.Size > before;
        }

        var entity = new TableEntity(LogName, HeadRow)
        {
            ["Size"] = size,
            ["RootHash"] = Convert.ToBase64String(MerkleHash.RootFromFrontier(frontier)),
            ["Frontier"] = frontier.SelectMany(h => h).ToArray(),
        };

        try
        {
            if (head.ETag is { } etag)
            {
                await table.UpdateEntityAsync(entity, etag, TableUpdateMode.Replace, cancellationToken);
            }
            else
            {
                await table.AddEntityAsync(entity, cancellationToken);
            }

            SetKnownHeadSize(size);
        }
        catch (RequestFailedException ex) when (ex.Status is (int)HttpStatusCode.PreconditionFailed or (int)HttpStatusCode.Conflict)
        {
            // Another process advanced the head first; re-read on the next round.
            _logger.LogDebug("Head of log {Log} moved under us at size {Size}", LogName, head.Size);
        }

        return true;
    }

    private async Task<StoredHead> ReadHeadAsync(TableClient table, CancellationToken cancellationToken)
    {
        var response = await table.GetEntityIfExistsAsync<TableEntity>(LogName, HeadRow, cancellationToken: cancellationToken);
        if (!response.HasValue || response.Value is null)
        {
            return new StoredHead(0, MerkleHash.Empty(), [], null);
        }

        var entity = response.Value;
        var size = entity.GetInt64("Size") ?? 0;
        var root = Convert.FromBase64String(entity.GetString("RootHash") ?? "");
        var packed = entity.GetBinary("Frontier") ?? [];
        var frontier = packed.Chunk(MerkleHash.Size).ToList();
        if (frontier.Count != long.PopCount(size) || root.Length != MerkleHash.Size)
        {
            throw new LogIntegrityException($"head of log {LogName} is malformed");
        }

        return new StoredHead(size, root, frontier, entity.ETag);
    }

    private void SetKnownHeadSize(long size)
    {
        var current = Volatile.Read(ref _knownHeadSize);
        while (size > current)
        {
            var seen = Interlocked.CompareExchange(ref _knownHeadSize, size, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private async Task<TableClient> TableAsync(CancellationToken cancellationToken)
    {
        if (_table is { } ready)
        {
            return ready;
        }

        await _initLock.WaitAsync(cancellationToken);
        try
        {
            if (_table is null)
            {
                var table = _tables.GetTableClient(_options.TableName);
                await table.CreateIfNotExistsAsync(cancellationToken);
                _table = table;
            }

            return _table;
        }
        finally
        {
            _initLock.Release();
        }
    }

    private static LogEntry ToEntry(TableEntity entity)
    {
        var index = long.Parse(entity.RowKey, NumberStyles.None, CultureInfo.InvariantCulture);
        var leaf = entity.GetBinary("LeafHash");
        if (leaf is not { Length: MerkleHash.Size })
        {
            throw new LogIntegrityException($"entry {index} has no valid leaf hash");
        }

        return new LogEntry(index, entity.GetString("RunId") ?? "", entity.GetString("TenantId") ?? "", leaf, entity.GetString("BlobName") ?? "", entity.GetString("KeyId") ?? "");
    }

    private sealed record PendingAppend(LogAppend Append, byte[] LeafHash)
    {
        public TaskCompletionSource<LogAppendResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed record StoredHead(long Size, byte[] Root, IReadOnlyList<byte[]> Frontier, ETag? ETag);
}
