using System.Security.Cryptography;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage.Edge;

/// <summary>
/// Edge agents: partition = tenant, row = agent id, so a tenant's placement only ever reads its own agents.
/// Agent tokens are stored as SHA-256 hashes in a separate index (hash → tenant, agent) used to authenticate calls.
/// </summary>
public sealed class EdgeAgentStore(TableProvider tables, TimeProvider time)
{
    private const string Table = "edgeagents";
    private const string TokenTable = "edgeagenttokens";
    private const string TokenPartition = "agenttoken";

    /// <summary>Stores a new agent and returns its token in clear — the only time it is ever visible.</summary>
    public async Task<(EdgeAgentRecord Agent, string Token)> EnrollAsync(
        string tenantId, string name, string region, IReadOnlyDictionary<string, string> labels, bool vpcMode, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var token = NewToken();
        var agent = new EdgeAgentRecord
        {
            TenantId = tenantId,
            AgentId = "agt_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
            Name = name,
            Region = region,
            Labels = labels,
            VpcMode = vpcMode,
            EnrolledAt = now,
            TokenId = TokenIdOf(token),
            TokenIssuedAt = now,
        };
        var agents = await tables.GetAsync(Table);
        await agents.AddEntityAsync(ToEntity(agent), cancellationToken);

        // The token index is written last: an agent row without it can never authenticate, so a failure here leaves nothing usable half-made.
        await AddTokenAsync(tenantId, agent.AgentId, token, now, cancellationToken);
        return (agent, token);
    }

    /// <summary>
    /// Issues the agent a new token and deletes every other token of it, so the old one is refused from the moment this
    /// returns. Null when the tenant has no such agent. The new token is returned in clear — the only time it is visible.
    /// </summary>
    public async Task<(EdgeAgentRecord Agent, string Token)?> RotateTokenAsync(string tenantId, string agentId, CancellationToken cancellationToken)
    {
        var agents = await tables.GetAsync(Table);
        var row = await agents.GetEntityIfExistsAsync<TableEntity>(tenantId, agentId, cancellationToken: cancellationToken);
        if (!row.HasValue)
        {
            return null;
        }

        // New token first, then the old ones go: the agent is never left without a working token by a failure in between.
        var now = time.GetUtcNow();
        var token = NewToken();
        var hash = ApiKeyStore.Hash(token);
        await AddTokenAsync(tenantId, agentId, token, now, cancellationToken);
        await DeleteTokensAsync(tenantId, agentId, keep: hash, cancellationToken);
        var before = FromEntity(row.Value!);
        var agent = before with { TokenId = TokenIdOf(token), TokenIssuedAt = now, TokenRotations = before.TokenRotations + 1 };
        try
        {
            await agents.UpdateEntityAsync(
                new TableEntity(tenantId, agentId) { ["TokenId"] = agent.TokenId, ["TokenIssuedAt"] = now, ["TokenRotations"] = agent.TokenRotations },
                ETag.All,
                TableUpdateMode.Merge,
                cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // Revoked meanwhile: the token just issued must not outlive the agent.
            await DeleteTokensAsync(tenantId, agentId, keep: null, cancellationToken);
            return null;
        }

        return (agent, token);
    }

    /// <summary>The (tenant, agent) an agent token belongs to, or null for an unknown token.</summary>
    public async Task<(string TenantId, string AgentId)?> ResolveTokenAsync(string token, CancellationToken cancellationToken)
    {
        var tokens = await tables.GetAsync(TokenTable);
        var entity = await tokens.GetEntityIfExistsAsync<TableEntity>(TokenPartition, ApiKeyStore.Hash(token), cancellationToken: cancellationToken);
        return entity.HasValue ? (entity.Value!.GetString("TenantId"), entity.Value.GetString("AgentId")) : null;
    }

    public async Task<EdgeAgentRecord?> GetAsync(string tenantId, string agentId, CancellationToken cancellationToken)
    {
        var agents = await tables.GetAsync(Table);
        var entity = await agents.GetEntityIfExistsAsync<TableEntity>(tenantId, agentId, cancellationToken: cancellationToken);
        return entity.HasValue ? FromEntity(entity.Value!) : null;
    }

    /// <summary>Records a heartbeat (merge: enrolment fields are kept).</summary>
    public async Task HeartbeatAsync(string tenantId, string agentId, EdgeHeartbeat heartbeat, CancellationToken cancellationToken)
    {
        var agents = await tables.GetAsync(Table);
        var entity = new TableEntity(tenantId, agentId)
        {
            ["LastHeartbeat"] = time.GetUtcNow(),
            ["Heartbeat"] = JsonSerializer.Serialize(heartbeat, SandstormJson.Options),
        };
        await agents.UpdateEntityAsync(entity, ETag.All, TableUpdateMode.Merge, cancellationToken);
    }

    /// <summary>Every agent of a tenant.</summary>
    public async Task<IReadOnlyList<EdgeAgentRecord>> ListAsync(string tenantId, CancellationToken cancellationToken)
    {
        var agents = await tables.GetAsync(Table);
        var list = new List<EdgeAgentRecord>();
        // A string filter: an expression filter compiles its captured values into new code on every call.
        await foreach (var e in agents.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {tenantId}"), cancellationToken: cancellationToken))
        {
            list.Add(FromEntity(e));
        }

        return list;
    }

    /// <summary>
    /// Revokes an agent: its tokens first (so it can no longer call), then its row (so nothing is placed on it). False when
    /// the tenant has no such agent. The token index is keyed by token hash, so its rows of this agent are found by a query.
    /// </summary>
    public async Task<bool> RevokeAsync(string tenantId, string agentId, CancellationToken cancellationToken)
    {
        var agents = await tables.GetAsync(Table);
        if (!(await agents.GetEntityIfExistsAsync<TableEntity>(tenantId, agentId, select: ["Name"], cancellationToken: cancellationToken)).HasValue)
        {
            return false;
        }

        await DeleteTokensAsync(tenantId, agentId, keep: null, cancellationToken);
        await agents.DeleteEntityAsync(tenantId, agentId, ETag.All, cancellationToken);
        return true;
    }

    /// <summary>
    /// Agents of every tenant that heartbeated within <paramref name="deadAfter"/>, counted by region (the live-agents
    /// gauge): one query over the table that reads only the region of the live rows.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, int>> CountLiveByRegionAsync(TimeSpan deadAfter, CancellationToken cancellationToken)
    {
        var agents = await tables.GetAsync(Table);
        var since = time.GetUtcNow() - deadAfter;
        var counts = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var filter = TableClient.CreateQueryFilter($"LastHeartbeat ge {since}");
        await foreach (var e in agents.QueryAsync<TableEntity>(filter, select: ["Region"], cancellationToken: cancellationToken))
        {
            var region = e.GetString("Region") ?? "";
            counts[region] = counts.GetValueOrDefault(region) + 1;
        }

        return counts;
    }

    /// <summary>The public id of a token: the first 16 hex digits of its hash (says nothing usable about the token).</summary>
    public static string TokenIdOf(string token) => "atk_" + ApiKeyStore.Hash(token)[..16];

    private static string NewToken() => "eat_" + ApiKeyStore.Base64Url(RandomNumberGenerator.GetBytes(32));

    private async Task AddTokenAsync(string tenantId, string agentId, string token, DateTimeOffset issuedAt, CancellationToken cancellationToken)
    {
        var tokens = await tables.GetAsync(TokenTable);
        await tokens.AddEntityAsync(
            new TableEntity(TokenPartition, ApiKeyStore.Hash(token)) { ["TenantId"] = tenantId, ["AgentId"] = agentId, ["IssuedAt"] = issuedAt },
            cancellationToken);
    }

    // The token index is keyed by token hash, so the rows of one agent are found by a query.
    private async Task DeleteTokensAsync(string tenantId, string agentId, string? keep, CancellationToken cancellationToken)
    {
        var tokens = await tables.GetAsync(TokenTable);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {TokenPartition} and TenantId eq {tenantId} and AgentId eq {agentId}");
        await foreach (var e in tokens.QueryAsync<TableEntity>(filter, select: ["RowKey"], cancellationToken: cancellationToken))
        {
            if (!string.Equals(e.RowKey, keep, StringComparison.Ordinal))
            {
                await tokens.DeleteEntityAsync(TokenPartition, e.RowKey, ETag.All, cancellationToken);
            }
        }
    }

    private static TableEntity ToEntity(EdgeAgentRecord a) => new(a.TenantId, a.AgentId)
    {
        ["Name"] = a.Name,
        ["Region"] = a.Region,
        ["Labels"] = JsonSerializer.Serialize(a.Labels, SandstormJson.Options),
        ["VpcMode"] = a.VpcMode,
        ["EnrolledAt"] = a.EnrolledAt,
        ["LastHeartbeat"] = a.LastHeartbeat,
        ["Heartbeat"] = a.Heartbeat is null ? null : JsonSerializer.Serialize(a.Heartbeat, SandstormJson.Options),
        ["TokenId"] = a.TokenId,
        ["TokenIssuedAt"] = a.TokenIssuedAt,
        ["TokenRotations"] = a.TokenRotations,
    };

    private static EdgeAgentRecord FromEntity(TableEntity e) => new()
    {
        TenantId = e.PartitionKey,
        AgentId = e.RowKey,
        Name = e.GetString("Name") ?? e.RowKey,
        Region = e.GetString("Region") ?? "",
        Labels = e.GetString("Labels") is { } labels
            ? JsonSerializer.Deserialize<Dictionary<string, string>>(labels, SandstormJson.Options) ?? []
            : [],
        VpcMode = e.GetBoolean("VpcMode") ?? false,
        EnrolledAt = e.GetDateTimeOffset("EnrolledAt") ?? default,
        LastHeartbeat = e.GetDateTimeOffset("LastHeartbeat"),
        Heartbeat = e.GetString("Heartbeat") is { } hb ? JsonSerializer.Deserialize<EdgeHeartbeat>(hb, SandstormJson.Options) : null,
        TokenId = e.GetString("TokenId"),
        TokenIssuedAt = e.GetDateTimeOffset("TokenIssuedAt"),
        TokenRotations = e.GetInt32("TokenRotations") ?? 0,
    };
}
