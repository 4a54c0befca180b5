using System.Text.Json;
using Azure;
using Azure.Data.Tables;

namespace Sandstorm.Storage;

/// <summary>
/// A tenant's batch lane: its batches in the order they asked to run, the first one running. One row per tenant
/// (partition = tenant, row = <c>lane</c>) updated with ETag concurrency, so joins and leaves from any number of
/// workers apply one at a time. Both operations are idempotent (an activity may run twice).
/// </summary>
public sealed class BatchLaneStore(TableProvider tables, BatchStore batches)
{
    private const string Table = "batchlanes";
    private const string Row = "lane";

    /// <summary>
    /// Puts <paramref name="batchId"/> in the tenant's lane (once) and says whether it is first, i.e. may run now.
    /// Batches ahead of it that have already ended (or no longer exist) are dropped first, so an orchestration that died
    /// without leaving cannot block the lane for ever.
    /// </summary>
    public async Task<bool> JoinAsync(string tenantId, string batchId, CancellationToken cancellationToken)
    {
        while (true)
        {
            var (lane, etag) = await ReadAsync(tenantId, cancellationToken);
            var changed = false;
            while (lane.Count > 0 && lane[0] != batchId && await HasEndedAsync(tenantId, lane[0], cancellationToken))
            {
                lane.RemoveAt(0);
                changed = true;
            }

            if (!lane.Contains(batchId))
            {
                lane.Add(batchId);
                changed = true;
            }

            if (!changed || await TryWriteAsync(tenantId, lane, etag, cancellationToken))
            {
                return lane[0] == batchId;
            }
        }
    }

    /// <summary>Takes <paramref name="batchId"/> out of the lane; returns the batch whose turn it now is, if it was first.</summary>
    public async Task<string?> LeaveAsync(string tenantId, string batchId, CancellationToken cancellationToken)
    {
        while (true)
        {
            var (lane, etag) = await ReadAsync(tenantId, cancellationToken);
            var index = lane.IndexOf(batchId);
            if (index < 0)
            {
                // Left already (a retried activity): hand the turn on again; a second "turn" event is ignored.
                return lane.Count > 0 ? lane[0] : null;
            }

            lane.RemoveAt(index);
            if (await TryWriteAsync(tenantId, lane, etag, cancellationToken))
            {
                return index == 0 && lane.Count > 0 ? lane[0] : null;
            }
        }
    }

    private async Task<bool> HasEndedAsync(string tenantId, string batchId, CancellationToken cancellationToken) =>
        await batches.GetAsync(tenantId, batchId, cancellationToken) is not { Status: not (BatchStatus.Completed or BatchStatus.Cancelled) };

    private async Task<(List<string> Lane, ETag? ETag)> ReadAsync(string tenantId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var row = await table.GetEntityIfExistsAsync<TableEntity>(tenantId, Row, cancellationToken: cancellationToken);
        if (!row.HasValue || row.Value is null)
        {
            return ([], null);
        }

        return (JsonSerializer.Deserialize<List<string>>(row.Value.GetString("Batches") ?? "[]") ?? [], row.Value.ETag);
    }

    private async Task<bool> TryWriteAsync(string tenantId, List<string> lane, ETag? etag, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var entity = new TableEntity(tenantId, Row) { ["Batches"] = JsonSerializer.Serialize(lane) };
        try
        {
            if (etag is { } current)
            {
                await table.UpdateEntityAsync(entity, current, TableUpdateMode.Replace, cancellationToken);
            }
            else
            {
                await table.AddEntityAsync(entity, cancellationToken);
            }

            return true;
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            return false;
        }
    }
}
