using Azure;
using Azure.Data.Tables;

namespace Sandstorm.Storage;

/// <summary>Batches in Azure Tables: partition = tenant, row = batch id, so a tenant only ever finds its own.</summary>
public sealed class BatchStore(TableProvider tables)
{
    private const string Table = "batches";

    /// <summary>Inserts a new batch; false when one with that id already exists for the tenant.</summary>
    public async Task<bool> TryCreateAsync(BatchRecord batch, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        try
        {
            await table.AddEntityAsync(ToEntity(batch), cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            return false;
        }
    }

    public async Task<BatchRecord?> GetAsync(string tenantId, string batchId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(tenantId, batchId, cancellationToken: cancellationToken);
        return response.HasValue ? FromEntity(response.Value!) : null;
    }

    /// <summary>Moves a batch to <paramref name="status"/> (merge: other properties are kept).</summary>
    public async Task SetStatusAsync(string tenantId, string batchId, BatchStatus status, DateTimeOffset? completedAt, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var entity = new TableEntity(tenantId, batchId) { ["Status"] = status.ToString() };
        if (completedAt is not null)
        {
            entity["CompletedAt"] = completedAt;
        }

        await table.UpdateEntityAsync(entity, ETag.All, TableUpdateMode.Merge, cancellationToken);
    }

    public async Task DeleteAsync(string tenantId, string batchId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        await table.DeleteEntityAsync(tenantId, batchId, ETag.All, cancellationToken);
    }

    private static TableEntity ToEntity(BatchRecord batch) => new(batch.TenantId, batch.BatchId)
    {
        ["Status"] = batch.Status.ToString(),
        ["Total"] = batch.Total,
        ["Manifest"] = batch.Manifest,
        ["CreatedAt"] = batch.CreatedAt,
        ["CompletedAt"] = batch.CompletedAt,
        ["RequestHash"] = batch.RequestHash,
    };

    private static BatchRecord FromEntity(TableEntity e) => new()
    {
        TenantId = e.PartitionKey,
        BatchId = e.RowKey,
        Status = Enum.Parse<BatchStatus>(e.GetString("Status")),
        Total = e.GetInt32("Total") ?? 0,
        Manifest = e.GetString("Manifest"),
        CreatedAt = e.GetDateTimeOffset("CreatedAt") ?? default,
        CompletedAt = e.GetDateTimeOffset("CompletedAt"),
        RequestHash = e.GetString("RequestHash"),
    };
}
