using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Orchestrations.Batches;
using Sandstorm.Storage;

namespace Sandstorm.Api.Batches;

/// <summary>A batch as <c>GET /v1/batches/{id}</c> shows it.</summary>
public sealed record BatchView(
    string Id,
    BatchStatus Status,
    int Total,
    BatchCountsView Counts,
    decimal Cost,
    DateTimeOffset CreatedAt,
    DateTimeOffset? CompletedAt,
    string Results);

/// <summary>Item counts; they add up to the total.</summary>
public sealed record BatchCountsView(int Queued, int Running, int Succeeded, int Failed, int Cancelled);

/// <summary>Submits, reads and cancels batches; the HTTP endpoints of both hosts are thin over it.</summary>
public sealed class BatchService(
    BatchStore batches,
    PayloadStore payloads,
    StorageBatchQueue queue,
    RunService runs,
    IOptions<BatchOptions> options,
    TenantRateLimiter limiter,
    TimeProvider time)
{
    /// <summary>
    /// Validates every item, stores the manifest and the batch's row, and puts a message on the batch queue. With an
    /// idempotency key the same key and manifest return the same batch. Nothing stays behind when any step fails.
    /// </summary>
    public async Task<(string BatchId, bool Created)> SubmitAsync(
        string tenantId, string body, bool jsonLines, string? idempotencyKey, CancellationToken cancellationToken)
    {
        await limiter.AcquireAsync(tenantId, RateLimitedAction.SubmitBatch, cancellationToken);
        return await SubmitAsync(tenantId, BatchManifest.Parse(body, jsonLines, options.Value.EffectiveMaxItems), idempotencyKey, cancellationToken);
    }

    /// <summary>As the string overload, reading the manifest from <paramref name="body"/> item by item, at most <paramref name="maxBytes"/> of it (413 beyond).</summary>
    public async Task<(string BatchId, bool Created)> SubmitAsync(
        string tenantId, Stream body, bool jsonLines, long maxBytes, string? idempotencyKey, CancellationToken cancellationToken)
    {
        // Before the body is read: a refused tenant costs no parsing.
        await limiter.AcquireAsync(tenantId, RateLimitedAction.SubmitBatch, cancellationToken);
        return await SubmitAsync(
            tenantId,
            await BatchManifest.ParseAsync(body, jsonLines, options.Value.EffectiveMaxItems, maxBytes, cancellationToken),
            idempotencyKey,
            cancellationToken);
    }

    private async Task<(string BatchId, bool Created)> SubmitAsync(
        string tenantId, IReadOnlyList<RunRequest> requests, string? idempotencyKey, CancellationToken cancellationToken)
    {
        await runs.RequireConsentAsync(tenantId, requests, cancellationToken);
        await runs.RequireOfferedAsync(tenantId, requests, cancellationToken);
        var canonical = BatchManifest.ToJsonLines(requests);
        var hash = BatchIntake.Hash(canonical);
        string batchId;
        if (idempotencyKey is not null)
        {
            if (idempotencyKey.Length is 0 or > 255)
            {
                throw new SandstormException(ErrorCodes.ValidationFailed, "Idempotency-Key must be 1 to 255 characters");
            }

            batchId = "bat_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(tenantId + "\nbatch\n" + idempotencyKey)))[..24];
            if (await batches.GetAsync(tenantId, batchId, cancellationToken) is { } existing)
            {
                return existing.RequestHash == hash
                    ? (batchId, false)
                    : throw new SandstormException(ErrorCodes.Conflict, "this Idempotency-Key was already used with a different batch", 409);
            }
        }
        else
        {
            batchId = "bat_" + Guid.NewGuid().ToString("N")[..24];
        }

        // Row first (an insert-if-absent carrying the manifest's hash), then the manifest: of two concurrent submissions
        // with one Idempotency-Key only the winner writes it, and the loser compares hashes (409 for another manifest).
        var manifest = BatchEvents.ManifestBlob(tenantId, batchId);
        var record = new BatchRecord
        {
            TenantId = tenantId,
            BatchId = batchId,
            Status = BatchStatus.Queued,
            Total = requests.Count,
            Manifest = manifest,
            CreatedAt = time.GetUtcNow(),
            RequestHash = hash,
        };
        if (!await batches.TryCreateAsync(record, cancellationToken))
        {
            var winner = await batches.GetAsync(tenantId, batchId, cancellationToken);
            return winner is null || winner.RequestHash == hash
                ? (batchId, false)
                : throw new SandstormException(ErrorCodes.Conflict, "this Idempotency-Key was already used with a different batch", 409);
        }

        try
        {
            await payloads.PutBlobAsync(manifest, BinaryData.FromString(canonical), cancellationToken);
            await queue.SendAsync(new BatchMessage { TenantId = tenantId, BatchId = batchId, Manifest = manifest }, cancellationToken);
        }
        catch
        {
            await batches.DeleteAsync(tenantId, batchId, CancellationToken.None);
            await payloads.DeletePrefixAsync($"{tenantId}/{batchId}/", CancellationToken.None);
            throw;
        }

        return (batchId, true);
    }

    /// <summary>The batch with its counts; null when this tenant has no such batch.</summary>
    public async Task<BatchView?> GetAsync(DurableTaskClient client, string tenantId, string batchId, CancellationToken cancellationToken)
    {
        var batch = await batches.GetAsync(tenantId, batchId, cancellationToken);
        if (batch is null)
        {
            return null;
        }

        var instance = await client.GetInstanceAsync(batchId, getInputsAndOutputs: true, cancellationToken);
        BatchProgress? progress = null;
        if (instance?.SerializedCustomStatus is { Length: > 0 } status)
        {
            progress = JsonSerializer.Deserialize<BatchProgress>(status, SandstormJson.Options);
        }

        var counts = progress?.Counts ?? BatchCounts.Zero;
        if (batch.Status is BatchStatus.Cancelled && progress is null)
        {
            counts = counts with { Cancelled = batch.Total };
        }

        var queued = Math.Max(0, batch.Total - counts.Running - counts.Finished);
        return new BatchView(
            batchId,
            batch.Status,
            batch.Total,
            new BatchCountsView(queued, counts.Running, counts.Succeeded, counts.Failed, counts.Cancelled),
            counts.Cost,
            batch.CreatedAt,
            batch.CompletedAt,
            $"/v1/batches/{batchId}/results");
    }

    /// <summary>
    /// Cancels a batch: marks it cancelling (so a chunk not yet prepared starts nothing) and raises the cancel event,
    /// which stops the children in flight. Null when there is no such batch; false when it had already finished.
    /// </summary>
    public async Task<bool?> CancelAsync(DurableTaskClient client, string tenantId, string batchId, CancellationToken cancellationToken)
    {
        var batch = await batches.GetAsync(tenantId, batchId, cancellationToken);
        if (batch is null)
        {
            return null;
        }

        if (batch.Status is BatchStatus.Completed or BatchStatus.Cancelled)
        {
            return false;
        }

        await batches.SetStatusAsync(tenantId, batchId, BatchStatus.Cancelling, null, cancellationToken);
        if (await client.GetInstanceAsync(batchId, cancellationToken) is { IsRunning: true })
        {
            await client.RaiseEventAsync(batchId, BatchEvents.Cancel, "cancelled by the caller", cancellationToken);
        }

        return true;
    }

    /// <summary>
    /// The results as JSON Lines in input order: the joined blob once the batch has finished, else the chunks written
    /// so far. Null when this tenant has no such batch.
    /// </summary>
    public async Task<IAsyncEnumerable<Stream>?> OpenResultsAsync(string tenantId, string batchId, CancellationToken cancellationToken)
    {
        if (await batches.GetAsync(tenantId, batchId, cancellationToken) is null)
        {
            return null;
        }

        return Streams(tenantId, batchId, cancellationToken);
    }

    private async IAsyncEnumerable<Stream> Streams(string tenantId, string batchId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (await payloads.OpenReadAsync(BatchEvents.ResultsBlob(tenantId, batchId), cancellationToken) is { } whole)
        {
            yield return whole;
            yield break;
        }

        foreach (var part in await payloads.ListAsync(BatchEvents.ResultsPartPrefix(tenantId, batchId), cancellationToken))
        {
            if (await payloads.OpenReadAsync(part, cancellationToken) is { } stream)
            {
                yield return stream;
            }
        }
    }
}
