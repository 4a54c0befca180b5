using System.Security.Cryptography;
using Azure;
using Azure.Data.Tables;

namespace Sandstorm.Storage.Edge;

/// <summary>
/// Edge enrollment tokens, stored only as SHA-256 hashes with their tenant, region, expiry and uses. A token enrols one
/// agent unless it was created for more (<see cref="EdgeEnrollmentToken.MaxUses"/>); it can be revoked before it is used
/// up or expires, and only ever admits agents to its own tenant. Each token has a public id (<c>ent_…</c>) by which it is
/// listed and revoked; the token itself is never stored.
/// </summary>
public sealed class EdgeEnrollmentTokenStore(TableProvider tables, TimeProvider time)
{
    private const string Table = "edgeenrollment";
    private const string Partition = "token";
    private const int Rounds = 8;

    /// <summary>Creates a token and returns it in clear — the only time it is ever visible.</summary>
    public async Task<(string Token, EdgeEnrollmentToken Record)> CreateAsync(
        string tenantId, string? region, DateTimeOffset expiresAt, int maxUses, CancellationToken cancellationToken)
    {
        var token = "set_" + ApiKeyStore.Base64Url(RandomNumberGenerator.GetBytes(32));
        var record = new EdgeEnrollmentToken(tenantId, region, time.GetUtcNow(), expiresAt)
        {
            TokenId = "ent_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
            MaxUses = maxUses,
        };
        var table = await tables.GetAsync(Table);
        await table.AddEntityAsync(ToEntity(ApiKeyStore.Hash(token), record), cancellationToken);
        return (token, record);
    }

    /// <summary>The stored token (expired, used up, revoked or not), or null when the token was never issued.</summary>
    public async Task<EdgeEnrollmentToken?> FindAsync(string token, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var entity = await table.GetEntityIfExistsAsync<TableEntity>(Partition, ApiKeyStore.Hash(token), cancellationToken: cancellationToken);
        return entity.HasValue ? FromEntity(entity.Value!) : null;
    }

    /// <summary>
    /// Takes one use of a token (an ETag-conditional write, so two enrolments racing for a single-use token cannot both
    /// win). The answer says why it could not: unknown, revoked, expired or used up.
    /// </summary>
    public async Task<(EdgeEnrollmentToken? Token, EdgeEnrollmentTokenState State)> UseAsync(string token, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var hash = ApiKeyStore.Hash(token);
        for (var round = 0; round < Rounds; round++)
        {
            var entity = await table.GetEntityIfExistsAsync<TableEntity>(Partition, hash, cancellationToken: cancellationToken);
            if (!entity.HasValue)
            {
                return (null, EdgeEnrollmentTokenState.Unknown);
            }

            var record = FromEntity(entity.Value!);
            var state = record.StateAt(time.GetUtcNow());
            if (state != EdgeEnrollmentTokenState.Active)
            {
                return (record, state);
            }

            var used = record with { Uses = record.Uses + 1, LastUsedAt = time.GetUtcNow() };
            try
            {
                await table.UpdateEntityAsync(ToEntity(hash, used), entity.Value!.ETag, TableUpdateMode.Replace, cancellationToken);
                return (used, EdgeEnrollmentTokenState.Active);
            }
            catch (RequestFailedException e) when (e.Status == 412)
            {
                // Another enrolment used it first: read it again.
            }
        }

        throw new InvalidOperationException("the enrollment token kept changing while it was being used");
    }

    /// <summary>A tenant's tokens, newest first (at most <paramref name="max"/>).</summary>
    public async Task<IReadOnlyList<EdgeEnrollmentToken>> ListAsync(string tenantId, int max, CancellationToken cancellationToken)
    {
        var list = new List<EdgeEnrollmentToken>();
        await foreach (var (_, record) in QueryTenantAsync(tenantId, null, cancellationToken))
        {
            list.Add(record);
        }

        return [.. list.OrderByDescending(t => t.CreatedAt).Take(max)];
    }

    /// <summary>Tokens of a tenant that can still enrol an agent now.</summary>
    public async Task<int> CountActiveAsync(string tenantId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var count = 0;
        await foreach (var (_, record) in QueryTenantAsync(tenantId, null, cancellationToken))
        {
            count += record.StateAt(now) == EdgeEnrollmentTokenState.Active ? 1 : 0;
        }

        return count;
    }

    /// <summary>Revokes a tenant's token by its id; null when the tenant has no such token (revoking twice is not an error).</summary>
    public async Task<EdgeEnrollmentToken?> RevokeAsync(string tenantId, string tokenId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        await foreach (var (hash, record) in QueryTenantAsync(tenantId, tokenId, cancellationToken))
        {
            if (record.RevokedAt is not null)
            {
                return record;
            }

            var revoked = record with { RevokedAt = time.GetUtcNow() };
            await table.UpdateEntityAsync(new TableEntity(Partition, hash) { ["RevokedAt"] = revoked.RevokedAt }, ETag.All, TableUpdateMode.Merge, cancellationToken);
            return revoked;
        }

        return null;
    }

    private async IAsyncEnumerable<(string Hash, EdgeEnrollmentToken Record)> QueryTenantAsync(
        string tenantId, string? tokenId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);

        // A string filter: an expression filter compiles its captured values into new code on every call.
        var filter = tokenId is null
            ? TableClient.CreateQueryFilter($"PartitionKey eq {Partition} and TenantId eq {tenantId}")
            : TableClient.CreateQueryFilter($"PartitionKey eq {Partition} and TenantId eq {tenantId} and TokenId eq {tokenId}");
        await foreach (var e in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            yield return (e.RowKey, FromEntity(e));
        }
    }

    private static TableEntity ToEntity(string hash, EdgeEnrollmentToken t) => new(Partition, hash)
    {
        ["TenantId"] = t.TenantId,
        ["TokenId"] = t.TokenId,
        ["Region"] = t.Region,
        ["CreatedAt"] = t.CreatedAt,
        ["ExpiresAt"] = t.ExpiresAt,
        ["MaxUses"] = t.MaxUses,
        ["Uses"] = t.Uses,
        ["LastUsedAt"] = t.LastUsedAt,
        ["RevokedAt"] = t.RevokedAt,
    };

    private static EdgeEnrollmentToken FromEntity(TableEntity e) =>
        new(e.GetString("TenantId"), e.GetString("Region"), e.GetDateTimeOffset("CreatedAt") ?? default, e.GetDateTimeOffset("ExpiresAt") ?? default)
        {
            // Tokens stored before ids and use counts existed were multi-use until they expired.
            TokenId = e.GetString("TokenId") ?? "ent_" + e.RowKey[..16],
            MaxUses = e.GetInt32("MaxUses") ?? int.MaxValue,
            Uses = e.GetInt32("Uses") ?? 0,
            LastUsedAt = e.GetDateTimeOffset("LastUsedAt"),
            RevokedAt = e.GetDateTimeOffset("RevokedAt"),
        };
}

/// <summary>Whether an enrollment token can enrol an agent now, and if not, why.</summary>
public enum EdgeEnrollmentTokenState
{
    Active,
    Unknown,
    Revoked,
    Expired,
    UsedUp,
}

/// <summary>A stored enrollment token (the token itself is never stored).</summary>
public sealed record EdgeEnrollmentToken(string TenantId, string? Region, DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt)
{
    /// <summary>Public id the token is listed and revoked by (<c>ent_</c> and 16 hex digits).</summary>
    public string TokenId { get; init; } = "";

    /// <summary>Agents it may enrol (1 unless created for more).</summary>
    public int MaxUses { get; init; } = 1;

    /// <summary>Agents it has enrolled.</summary>
    public int Uses { get; init; }

    public DateTimeOffset? LastUsedAt { get; init; }

    public DateTimeOffset? RevokedAt { get; init; }

    /// <summary>Revoked first, then expired, then used up.</summary>
    public EdgeEnrollmentTokenState StateAt(DateTimeOffset now) =>
        RevokedAt is not null ? EdgeEnrollmentTokenState.Revoked
        : ExpiresAt <= now ? EdgeEnrollmentTokenState.Expired
        : Uses >= MaxUses ? EdgeEnrollmentTokenState.UsedUp
        : EdgeEnrollmentTokenState.Active;
}
