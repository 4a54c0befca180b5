using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage;

/// <summary>Runs in Azure Tables: partition = tenant, row = run id. A tenant can only ever address its own partition.</summary>
public sealed class RunStore(TableProvider tables)
{
    private const string Table = "runs";

    /// <summary>Inserts a new run; false when a run with that id already exists.</summary>
    public async Task<bool> TryCreateAsync(RunRecord run, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        try
        {
            await table.AddEntityAsync(ToEntity(run), cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            return false;
        }
    }

    /// <summary>Writes the run's current state (insert or merge: properties not set here are kept).</summary>
    public async Task UpsertAsync(RunRecord run, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        await table.UpsertEntityAsync(ToEntity(run), TableUpdateMode.Merge, cancellationToken);
    }

    /// <summary>Marks a run as running where it was placed (insert or merge).</summary>
    public async Task MarkRunningAsync(string tenantId, string runId, RouteCandidate placement, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var entity = new TableEntity(tenantId, runId)
        {
            ["Status"] = nameof(RunStatus.Running),
            ["Placement"] = placement.Key,
        };
        await table.UpsertEntityAsync(entity, TableUpdateMode.Merge, cancellationToken);
    }

    public async Task<RunRecord?> GetAsync(string tenantId, string runId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(tenantId, runId, cancellationToken: cancellationToken);
        return response.HasValue ? FromEntity(response.Value!) : null;
    }

    /// <summary>
    /// The tenant's runs created at or after <paramref name="since"/>, newest first (outputs not read). Rows are keyed by
    /// run id, not time, so the period's rows are read and sorted here.
    /// </summary>
    public async Task<IReadOnlyList<RunRecord>> ListAsync(string tenantId, DateTimeOffset since, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var list = new List<RunRecord>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {tenantId} and CreatedAt ge {since}");
        string[] columns = ["Status", "CreatedAt", "CompletedAt", "Placement", "BatchId", "Result"];
        await foreach (var e in table.QueryAsync<TableEntity>(filter, select: columns, cancellationToken: cancellationToken))
        {
            list.Add(FromEntity(e));
        }

        return [.. list.OrderByDescending(r => r.CreatedAt).ThenBy(r => r.RunId, StringComparer.Ordinal)];
    }

    public async Task DeleteAsync(string tenantId, string runId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        await table.DeleteEntityAsync(tenantId, runId, ETag.All, cancellationToken);
    }

    private static TableEntity ToEntity(RunRecord run)
    {
        var entity = new TableEntity(run.TenantId, run.RunId)
        {
            ["Status"] = run.Status.ToString(),
            ["CreatedAt"] = run.CreatedAt,
            ["CompletedAt"] = run.CompletedAt,
            ["RequestHash"] = run.RequestHash,
            ["BatchId"] = run.BatchId,
        };
        if (run.Result is not null)
        {
            entity["Result"] = JsonSerializer.Serialize(run.Result with { Stdout = null, Stderr = null }, SandstormJson.Options);
        }

        if (run.Stdout is not null)
        {
            entity["Stdout"] = JsonSerializer.Serialize(run.Stdout, SandstormJson.Options);
        }

        if (run.Stderr is not null)
        {
            entity["Stderr"] = JsonSerializer.Serialize(run.Stderr, SandstormJson.Options);
        }

        return entity;
    }

    private static RunRecord FromEntity(TableEntity e) => new()
    {
        TenantId = e.PartitionKey,
        RunId = e.RowKey,
        Status = Enum.Parse<RunStatus>(e.GetString("Status")),
        CreatedAt = e.GetDateTimeOffset("CreatedAt") ?? default,
        CompletedAt = e.GetDateTimeOffset("CompletedAt"),
        RequestHash = e.GetString("RequestHash"),
        BatchId = e.GetString("BatchId"),
        Placement = e.GetString("Placement"),
        Result = Deserialize<RunResult>(e.GetString("Result")),
        Stdout = Deserialize<Payload>(e.GetString("Stdout")),
        Stderr = Deserialize<Payload>(e.GetString("Stderr")),
    };

    private static T? Deserialize<T>(string? json)
        where T : class =>
        json is null ? null : JsonSerializer.Deserialize<T>(json, SandstormJson.Options);
}
