using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage.Edge;

/// <summary>Edge jobs: partition = tenant, row = job id. Every state change is a conditional write on the row's ETag.</summary>
public sealed class EdgeJobStore(TableProvider tables)
{
    private const string Table = "edgejobs";

    /// <summary>Inserts a new job; false when a job with that id already exists (a retried dispatch).</summary>
    public async Task<bool> TryCreateAsync(EdgeJobRecord job, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        try
        {
            await table.AddEntityAsync(ToEntity(job), cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            return false;
        }
    }

    public async Task<EdgeJobRecord?> GetAsync(string tenantId, string jobId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var entity = await table.GetEntityIfExistsAsync<TableEntity>(tenantId, jobId, cancellationToken: cancellationToken);
        return entity.HasValue ? FromEntity(entity.Value!) : null;
    }

    /// <summary>
    /// Replaces the job if nobody changed it since it was read and returns it with its new ETag; null when someone did
    /// (re-read and decide again).
    /// </summary>
    public async Task<EdgeJobRecord?> TryUpdateAsync(EdgeJobRecord job, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        try
        {
            var response = await table.UpdateEntityAsync(ToEntity(job), job.ETag, TableUpdateMode.Replace, cancellationToken);
            return job with { ETag = response.Headers.ETag ?? default };
        }
        catch (RequestFailedException e) when (e.Status is 412 or 404)
        {
            return null;
        }
    }

    /// <summary>A tenant's jobs assigned to one agent in one state.</summary>
    public Task<IReadOnlyList<EdgeJobRecord>> ListForAgentAsync(string tenantId, string agentId, EdgeJobState state, CancellationToken cancellationToken) =>
        QueryAsync(TableClient.CreateQueryFilter($"PartitionKey eq {tenantId} and AgentId eq {agentId} and State eq {state.ToString()}"), cancellationToken);

    /// <summary>Queued and leased jobs of every tenant (the sweeper's view).</summary>
    public Task<IReadOnlyList<EdgeJobRecord>> ListOpenAsync(CancellationToken cancellationToken) =>
        QueryAsync(
            TableClient.CreateQueryFilter($"State eq {nameof(EdgeJobState.Queued)} or State eq {nameof(EdgeJobState.Leased)}"),
            cancellationToken);

    /// <summary>Completed jobs whose event has not been confirmed raised (a crash between the two writes).</summary>
    public Task<IReadOnlyList<EdgeJobRecord>> ListUnraisedAsync(CancellationToken cancellationToken) =>
        QueryAsync(TableClient.CreateQueryFilter($"State eq {nameof(EdgeJobState.Completed)} and EventRaised eq {false}"), cancellationToken);

    private async Task<IReadOnlyList<EdgeJobRecord>> QueryAsync(string filter, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var list = new List<EdgeJobRecord>();
        await foreach (var e in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            list.Add(FromEntity(e));
        }

        return list;
    }

    private static TableEntity ToEntity(EdgeJobRecord j) => new(j.TenantId, j.JobId)
    {
        ["RunId"] = j.RunId,
        ["AgentId"] = j.AgentId,
        ["Agents"] = string.Join(',', j.Agents),
        ["State"] = j.State.ToString(),
        ["Runtime"] = j.Runtime,
        ["Region"] = j.Region,
        ["IsolationLevel"] = j.IsolationLevel.ToString(),
        ["Spec"] = Serialize(j.Spec),
        ["Attempts"] = j.Attempts,
        ["CreatedAt"] = j.CreatedAt,
        ["Deadline"] = j.Deadline,
        ["TraceParent"] = j.TraceParent,
        ["BootcImage"] = j.BootcImage,
        ["LeasedAt"] = j.LeasedAt,
        ["CompletedAt"] = j.CompletedAt,
        ["Outcome"] = j.Outcome is null ? null : Serialize(j.Outcome),
        ["EventRaised"] = j.EventRaised,
        ["EventsRaised"] = j.EventsRaised,
        ["Deliveries"] = j.Deliveries,
        ["CompletedBy"] = j.CompletedBy,
    };

    private static EdgeJobRecord FromEntity(TableEntity e) => new()
    {
        TenantId = e.PartitionKey,
        JobId = e.RowKey,
        RunId = e.GetString("RunId"),
        AgentId = e.GetString("AgentId"),
        Agents = (e.GetString("Agents") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries),
        State = Enum.Parse<EdgeJobState>(e.GetString("State")),
        Runtime = e.GetString("Runtime"),
        Region = e.GetString("Region") ?? "",
        IsolationLevel = Enum.Parse<IsolationLevel>(e.GetString("IsolationLevel") ?? nameof(IsolationLevel.None)),
        Spec = Deserialize(e.GetString("Spec")) ?? Payload.Empty,
        Attempts = e.GetInt32("Attempts") ?? 0,
        CreatedAt = e.GetDateTimeOffset("CreatedAt") ?? default,
        Deadline = e.GetDateTimeOffset("Deadline") ?? default,
        TraceParent = e.GetString("TraceParent"),
        BootcImage = e.GetString("BootcImage"),
        LeasedAt = e.GetDateTimeOffset("LeasedAt"),
        CompletedAt = e.GetDateTimeOffset("CompletedAt"),
        Outcome = Deserialize(e.GetString("Outcome")),
        EventRaised = e.GetBoolean("EventRaised") ?? false,
        EventsRaised = e.GetInt32("EventsRaised") ?? 0,
        Deliveries = e.GetInt32("Deliveries") ?? 0,
        CompletedBy = e.GetString("CompletedBy"),
        ETag = e.ETag,
    };

    private static string Serialize(Payload payload) => JsonSerializer.Serialize(payload, SandstormJson.Options);

    private static Payload? Deserialize(string? json) => json is null ? null : JsonSerializer.Deserialize<Payload>(json, SandstormJson.Options);
}
