using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Azure;
using Azure.Data.Tables;

namespace Sandstorm.Storage;

/// <summary>Tenant API keys, stored only as SHA-256 hashes. Resolutions are cached briefly to keep auth off the hot path.</summary>
public sealed class ApiKeyStore(TableProvider tables, TimeProvider time, int maxCached = ApiKeyStore.MaxCached)
{
    private const string Table = "apikeys";
    private const string Partition = "apikey";
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);

    /// <summary>Most resolutions kept: unknown keys are cached too (each costs a read), but never without bound.</summary>
    public const int MaxCached = 10_000;
    private readonly ConcurrentDictionary<string, (string? Tenant, DateTimeOffset Until)> _cache = new();

    /// <summary>Resolutions held in memory now.</summary>
    public int CachedCount => _cache.Count;

    /// <summary>Creates a key for a tenant and returns it in clear — the only time it is ever visible.</summary>
    public async Task<string> CreateAsync(string tenantId, string name, CancellationToken cancellationToken)
    {
        var key = "sk_" + Base64Url(RandomNumberGenerator.GetBytes(32));
        var table = await tables.GetAsync(Table);
        await table.AddEntityAsync(
            new TableEntity(Partition, Hash(key)) { ["TenantId"] = tenantId, ["Name"] = name, ["CreatedAt"] = time.GetUtcNow() },
            cancellationToken);
        return key;
    }

    /// <summary>The tenant owning the key, or null for an unknown key.</summary>
    public async Task<string?> ResolveAsync(string key, CancellationToken cancellationToken)
    {
        var hash = Hash(key);
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(hash, out var hit) && hit.Until > now)
        {
            return hit.Tenant;
        }

        var table = await tables.GetAsync(Table);
        var entity = await table.GetEntityIfExistsAsync<TableEntity>(Partition, hash, cancellationToken: cancellationToken);
        var tenant = entity.HasValue ? entity.Value!.GetString("TenantId") : null;
        if (_cache.Count >= maxCached)
        {
            // Full: drop what expired; a flood of unknown keys then stops being remembered rather than growing the cache.
            foreach (var (cachedHash, cached) in _cache)
            {
                if (cached.Until <= now)
                {
                    _cache.TryRemove(cachedHash, out _);
                }
            }
        }

        if (_cache.Count < maxCached || tenant is not null)
        {
            _cache[hash] = (tenant, now + CacheFor);
        }

        return tenant;
    }

    /// <summary>True when the stored hash for this key exists (used to check a saved dev key is still valid).</summary>
    public async Task<bool> ExistsAsync(string key, CancellationToken cancellationToken) =>
        await ResolveAsync(key, cancellationToken) is not null;

    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
