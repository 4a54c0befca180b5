using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage.Edge;

/// <summary>
/// Falco alerts waiting for an edge agent to match against its sandboxes (table <c>edgequarantine</c>, partition = tenant
/// and agent). Each request is handed out with every heartbeat of the agent until it is <see cref="Lifetime"/> old (the
/// agent acts on each finding once), so a lost heartbeat answer loses nothing.
/// </summary>
public sealed class EdgeQuarantineStore(TableProvider tables, TimeProvider time)
{
    /// <summary>How long a request is offered: several heartbeats, then it is stale (the sandbox is long gone or never was).</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(2);

    private const string Table = "edgequarantine";

    /// <summary>Queues a request for one agent of the tenant.</summary>
    public async Task AddAsync(string tenantId, string agentId, EdgeQuarantineRequest request, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        await table.UpsertEntityAsync(
            new TableEntity(Partition(tenantId, agentId), RowOf(request.Finding.Id ?? ""))
            {
                ["Request"] = JsonSerializer.Serialize(request, SandstormJson.Options),
                ["CreatedAt"] = time.GetUtcNow(),
            },
            TableUpdateMode.Replace,
            cancellationToken);
    }

    /// <summary>The agent's requests still fresh; stale ones are deleted on the way.</summary>
    public async Task<IReadOnlyList<EdgeQuarantineRequest>> PendingAsync(string tenantId, string agentId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var now = time.GetUtcNow();
        var pending = new List<EdgeQuarantineRequest>();
        var partition = Partition(tenantId, agentId);
        await foreach (var e in table.QueryAsync<TableEntity>(x => x.PartitionKey == partition, maxPerPage: 100, cancellationToken: cancellationToken))
        {
            if (e.GetDateTimeOffset("CreatedAt") is { } created && now - created > Lifetime)
            {
                await table.DeleteEntityAsync(e.PartitionKey, e.RowKey, e.ETag, cancellationToken);
                continue;
            }

            if (JsonSerializer.Deserialize<EdgeQuarantineRequest>(e.GetString("Request"), SandstormJson.Options) is { } request)
            {
                pending.Add(request);
            }

            if (pending.Count >= 50)
            {
                break;
            }
        }

        return pending;
    }

    private static string Partition(string tenantId, string agentId) => tenantId + "|" + agentId;

    private static string RowOf(string findingId) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(findingId)))[..32];
}
