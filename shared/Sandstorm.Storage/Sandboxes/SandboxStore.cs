using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage.Sandboxes;

/// <summary>
/// Kept sandboxes in Azure Tables: partition = tenant, row = sandbox id, so a tenant only ever addresses its own. An
/// index row per sandbox (partition <c>~index</c>) names its tenant, for calls that carry only the sandbox's own token
/// (E2B's envd wire). Commands are rows of their own (partition = tenant|sandbox, row = sequence).
/// </summary>
public sealed class SandboxStore(TableProvider tables)
{
    private const string Table = "sandboxes";
    private const string CommandTable = "sandboxcommands";
    private const string IndexPartition = "~index";

    /// <summary>Inserts a new sandbox and its index row; false when the id is taken.</summary>
    public async Task<bool> TryCreateAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        try
        {
            // The index first: a record is never without it (ids are random; a clash leaves the first owner's index as it was).
            await table.AddEntityAsync(new TableEntity(IndexPartition, record.SandboxId) { ["TenantId"] = record.TenantId }, cancellationToken);
            await table.AddEntityAsync(ToEntity(record), cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            return false;
        }
    }

    /// <summary>Writes the record, only if nobody changed it since <paramref name="etag"/> was read (null: unconditionally).</summary>
    public async Task<bool> TryUpdateAsync(SandboxRecord record, ETag? etag, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        try
        {
            if (etag is { } version)
            {
                await table.UpdateEntityAsync(ToEntity(record), version, TableUpdateMode.Replace, cancellationToken);
            }
            else
            {
                await table.UpsertEntityAsync(ToEntity(record), TableUpdateMode.Replace, cancellationToken);
            }

            return true;
        }
        catch (RequestFailedException e) when (e.Status is 412 or 404)
        {
            return false;
        }
    }

    public async Task<(SandboxRecord Record, ETag ETag)?> GetAsync(string tenantId, string sandboxId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(tenantId, sandboxId, cancellationToken: cancellationToken);
        return response.HasValue ? (FromEntity(response.Value!), response.Value!.ETag) : null;
    }

    /// <summary>The tenant owning a sandbox id, or null.</summary>
    public async Task<string?> TenantOfAsync(string sandboxId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(IndexPartition, sandboxId, cancellationToken: cancellationToken);
        return response.HasValue ? response.Value!.GetString("TenantId") : null;
    }

    /// <summary>A page of a tenant's sandboxes (optionally only live ones), and the token of the next page.</summary>
    public async Task<(IReadOnlyList<SandboxRecord> Items, string? Next)> ListAsync(
        string tenantId, bool liveOnly, int pageSize, string? continuation, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var filter = liveOnly
            ? TableClient.CreateQueryFilter($"PartitionKey eq {tenantId} and (Status eq {nameof(SandboxStatus.Running)} or Status eq {nameof(SandboxStatus.Starting)})")
            : TableClient.CreateQueryFilter($"PartitionKey eq {tenantId}");
        await foreach (var page in table.QueryAsync<TableEntity>(filter, maxPerPage: pageSize, cancellationToken: cancellationToken).AsPages(continuation, pageSize))
        {
            return ([.. page.Values.Select(FromEntity)], page.ContinuationToken);
        }

        return ([], null);
    }

    /// <summary>Live sandboxes of every tenant on one provider (to find the ones a dead host or agent held).</summary>
    public async IAsyncEnumerable<SandboxRecord> LiveOnAsync(string provider, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var filter = TableClient.CreateQueryFilter($"Provider eq {provider} and (Status eq {nameof(SandboxStatus.Running)} or Status eq {nameof(SandboxStatus.Starting)})");
        await foreach (var e in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            yield return FromEntity(e);
        }
    }

    /// <summary>How many live sandboxes a tenant has.</summary>
    public async Task<int> CountLiveAsync(string tenantId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {tenantId} and (Status eq {nameof(SandboxStatus.Running)} or Status eq {nameof(SandboxStatus.Starting)})");
        var count = 0;
        await foreach (var _ in table.QueryAsync<TableEntity>(filter, select: ["RowKey"], cancellationToken: cancellationToken))
        {
            count++;
        }

        return count;
    }

    /// <summary>Removes a sandbox that never came to be (a refused or failed create): nothing half-created stays.</summary>
    public async Task DeleteAsync(string tenantId, string sandboxId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        await table.DeleteEntityAsync(tenantId, sandboxId, ETag.All, cancellationToken);
        await table.DeleteEntityAsync(IndexPartition, sandboxId, ETag.All, cancellationToken);
    }

    /// <summary>Writes a command's row (insert or replace: the row of a running command is replaced when it ends).</summary>
    public async Task UpsertCommandAsync(SandboxCommandRecord command, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(CommandTable);
        var entity = new TableEntity(CommandPartition(command.TenantId, command.SandboxId), command.Sequence.ToString("D8", System.Globalization.CultureInfo.InvariantCulture))
        {
            ["CommandId"] = command.CommandId,
            ["Record"] = JsonSerializer.Serialize(command, SandstormJson.Options),
        };
        await table.UpsertEntityAsync(entity, TableUpdateMode.Replace, cancellationToken);
    }

    /// <summary>A sandbox's commands in order.</summary>
    public async Task<IReadOnlyList<SandboxCommandRecord>> CommandsAsync(string tenantId, string sandboxId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(CommandTable);
        var list = new List<SandboxCommandRecord>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {CommandPartition(tenantId, sandboxId)}");
        await foreach (var e in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            list.Add(JsonSerializer.Deserialize<SandboxCommandRecord>(e.GetString("Record"), SandstormJson.Options)!);
        }

        return list;
    }

    private static string CommandPartition(string tenantId, string sandboxId) => tenantId + "|" + sandboxId;

    private static TableEntity ToEntity(SandboxRecord record) => new(record.TenantId, record.SandboxId)
    {
        ["Status"] = record.Status.ToString(),
        ["Provider"] = record.Provider,
        ["CreatedAt"] = record.CreatedAt,
        ["ExpiresAt"] = record.ExpiresAt,
        ["Record"] = JsonSerializer.Serialize(record, SandstormJson.Options),
    };

    private static SandboxRecord FromEntity(TableEntity e) =>
        JsonSerializer.Deserialize<SandboxRecord>(e.GetString("Record"), SandstormJson.Options)!;
}
