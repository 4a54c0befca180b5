using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Sandstorm.Storage;

namespace Sandstorm.IntegrationTests;

/// <summary>Creates tenants and reads what the host persisted, straight from storage.</summary>
public static class Tenants
{
    public static async Task<(string Tenant, string Key)> CreateAsync(string storage)
    {
        var tenant = "t-" + Guid.NewGuid().ToString("N")[..12];
        var keys = new ApiKeyStore(new TableProvider(new TableServiceClient(storage), Options.Create(new StorageOptions())), TimeProvider.System);
        return (tenant, await keys.CreateAsync(tenant, "integration test", CancellationToken.None));
    }

    /// <summary>Rows a tenant has in a table (runs, ledger).</summary>
    public static async Task<int> CountAsync(string storage, string table, string tenant)
    {
        var client = new TableServiceClient(storage).GetTableClient(table);
        await client.CreateIfNotExistsAsync();
        var count = 0;
        await foreach (var _ in client.QueryAsync<TableEntity>(e => e.PartitionKey == tenant, select: ["RowKey"]))
        {
            count++;
        }

        return count;
    }
}
