using System.Collections.Concurrent;
using System.Text.Json;
using Azure.Data.Tables;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage;

/// <summary>Each tenant's <see cref="TenantSettings"/> (one row per tenant), read through a short cache.</summary>
public sealed class TenantStore(TableProvider tables, TimeProvider time)
{
    private const string Table = "tenants";
    private const string Row = "settings";
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);
    private readonly ConcurrentDictionary<string, (TenantSettings Settings, DateTimeOffset Until)> _cache = new();

    public async Task<TenantSettings> GetAsync(string tenantId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(tenantId, out var hit) && hit.Until > now)
        {
            return hit.Settings;
        }

        var table = await tables.GetAsync(Table);
        var entity = await table.GetEntityIfExistsAsync<TableEntity>(tenantId, Row, cancellationToken: cancellationToken);
        var settings = entity.HasValue && entity.Value!.GetString("Settings") is { } json
            ? JsonSerializer.Deserialize<TenantSettings>(json, SandstormJson.Options) ?? TenantSettings.Default
            : TenantSettings.Default;
        _cache[tenantId] = (settings, now + CacheFor);
        return settings;
    }

    public async Task SetAsync(string tenantId, TenantSettings settings, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        await table.UpsertEntityAsync(
            new TableEntity(tenantId, Row) { ["Settings"] = JsonSerializer.Serialize(settings, SandstormJson.Options), ["UpdatedAt"] = time.GetUtcNow() },
            TableUpdateMode.Replace,
            cancellationToken);
        _cache[tenantId] = (settings, time.GetUtcNow() + CacheFor);
    }
}
