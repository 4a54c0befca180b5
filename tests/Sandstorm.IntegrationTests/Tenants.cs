using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Sandstorm.Storage;

namespace Sandstorm.IntegrationTests;

/// <summary>Creates tenants and reads what the host persisted, straight from storage.</summary>
public static class Tenants
{
    /// <summary>A new tenant and API key; by default it opts in to isolation none (the tests run trusted code as plain processes).</summary>
    public static async Task<(string Tenant, string Key)> CreateAsync(string storage, bool allowUnisolated = true)
    {
        var tenant = "t-" + Guid.NewGuid().ToString("N")[..12];
        var tables = new TableProvider(new TableServiceClient(storage), Options.Create(new StorageOptions()));
        if (allowUnisolated)
        {
            await new TenantStore(tables, TimeProvider.System).SetAsync(tenant, new Sandstorm.Core.Contracts.TenantSettings { AllowUnisolated = true }, CancellationToken.None);
        }

        var keys = new ApiKeyStore(tables, TimeProvider.System);
        return (tenant, await keys.CreateAsync(tenant, "integration test", CancellationToken.None));
    }

    /// <summary>Sets a tenant's settings (quotas, opt-ins) as an operator would.</summary>
    public static Task SetAsync(string storage, string tenant, Sandstorm.Core.Contracts.TenantSettings settings)
    {
        var tables = new TableProvider(new TableServiceClient(storage), Options.Create(new StorageOptions()));
        return new TenantStore(tables, TimeProvider.System).SetAsync(tenant, settings, CancellationToken.None);
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
