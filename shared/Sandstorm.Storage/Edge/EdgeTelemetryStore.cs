using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage.Edge;

/// <summary>Runtime events and run metrics from agents: partition = tenant, row = agent id + event id, so a re-post is a no-op.</summary>
public sealed class EdgeTelemetryStore(TableProvider tables, TimeProvider time)
{
    private const string Table = "edgetelemetry";

    /// <summary>Stores each event once; returns how many were new and how many were already stored.</summary>
    public async Task<(int Accepted, int Duplicates)> AddAsync(string tenantId, string agentId, IReadOnlyList<EdgeTelemetryEvent> events, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var (accepted, duplicates) = (0, 0);
        var receivedAt = time.GetUtcNow();
        foreach (var e in events)
        {
            var entity = new TableEntity(tenantId, RowKey(agentId, e.EventId))
            {
                ["AgentId"] = agentId,
                ["EventId"] = e.EventId,
                ["JobId"] = e.JobId,
                ["Kind"] = e.Kind,
                ["At"] = e.At,
                ["ReceivedAt"] = receivedAt,
                ["Data"] = e.Data is null ? null : JsonSerializer.Serialize(e.Data, SandstormJson.Options),
            };
            try
            {
                await table.AddEntityAsync(entity, cancellationToken);
                accepted++;
            }
            catch (RequestFailedException ex) when (ex.Status == 409)
            {
                duplicates++;
            }
        }

        return (accepted, duplicates);
    }

    /// <summary>A tenant's events about one job, oldest first.</summary>
    public async Task<IReadOnlyList<EdgeTelemetryEvent>> ListForJobAsync(string tenantId, string jobId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var list = new List<EdgeTelemetryEvent>();
        await foreach (var e in table.QueryAsync<TableEntity>(TableClient.CreateQueryFilter($"PartitionKey eq {tenantId} and JobId eq {jobId}"), cancellationToken: cancellationToken))
        {
            list.Add(new EdgeTelemetryEvent
            {
                EventId = e.GetString("EventId"),
                JobId = e.GetString("JobId"),
                Kind = e.GetString("Kind"),
                At = e.GetDateTimeOffset("At") ?? default,
                Data = e.GetString("Data") is { } d ? JsonSerializer.Deserialize<Dictionary<string, string>>(d, SandstormJson.Options) : null,
            });
        }

        return [.. list.OrderBy(e => e.At)];
    }

    private static string RowKey(string agentId, string eventId) => $"{agentId}_{eventId}";
}
