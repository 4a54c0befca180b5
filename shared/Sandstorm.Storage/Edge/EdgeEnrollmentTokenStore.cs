using System.Security.Cryptography;
using Azure.Data.Tables;

namespace Sandstorm.Storage.Edge;

/// <summary>
/// Edge enrollment tokens, stored only as SHA-256 hashes with their tenant, region and expiry. A token is multi-use until
/// it expires (one token can enrol a fleet); it is short-lived by default and only ever admits agents to its own tenant.
/// </summary>
public sealed class EdgeEnrollmentTokenStore(TableProvider tables, TimeProvider time)
{
    private const string Table = "edgeenrollment";
    private const string Partition = "token";

    /// <summary>Creates a token and returns it in clear — the only time it is ever visible.</summary>
    public async Task<(string Token, EdgeEnrollmentToken Record)> CreateAsync(string tenantId, string? region, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        var token = "set_" + ApiKeyStore.Base64Url(RandomNumberGenerator.GetBytes(32));
        var record = new EdgeEnrollmentToken(tenantId, region, time.GetUtcNow(), expiresAt);
        var table = await tables.GetAsync(Table);
        await table.AddEntityAsync(
            new TableEntity(Partition, ApiKeyStore.Hash(token))
            {
                ["TenantId"] = tenantId,
                ["Region"] = region,
                ["CreatedAt"] = record.CreatedAt,
                ["ExpiresAt"] = expiresAt,
            },
            cancellationToken);
        return (token, record);
    }

    /// <summary>The stored token (expired or not), or null when the token was never issued.</summary>
    public async Task<EdgeEnrollmentToken?> FindAsync(string token, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var entity = await table.GetEntityIfExistsAsync<TableEntity>(Partition, ApiKeyStore.Hash(token), cancellationToken: cancellationToken);
        if (!entity.HasValue)
        {
            return null;
        }

        var e = entity.Value!;
        return new EdgeEnrollmentToken(e.GetString("TenantId"), e.GetString("Region"), e.GetDateTimeOffset("CreatedAt") ?? default, e.GetDateTimeOffset("ExpiresAt") ?? default);
    }
}

/// <summary>A stored enrollment token (the token itself is never stored).</summary>
public sealed record EdgeEnrollmentToken(string TenantId, string? Region, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt);
