using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage.Shield;

/// <summary>A tenant's own Shield rules (Falco's YAML, validated before it is stored) and its quarantine threshold.</summary>
public sealed record ShieldTenantRules
{
    /// <summary>The rule file as uploaded; empty: the default rules only.</summary>
    public string Yaml { get; init; } = "";

    /// <summary>Falco priority at or above which a finding quarantines (lower-case; <c>critical</c> by default).</summary>
    public string QuarantineThreshold { get; init; } = "critical";

    /// <summary>Lower-case hex SHA-256 of <see cref="Yaml"/>.</summary>
    public string Sha256 { get; init; } = "";

    /// <summary>Rules defined by the file (names), as the validator counted them.</summary>
    public IReadOnlyList<string> RuleNames { get; init; } = [];

    public DateTimeOffset? UpdatedAt { get; init; }

    public static ShieldTenantRules Default { get; } = new();
}

/// <summary>A finding as stored: the finding, what it was matched to, and what Shield did about it.</summary>
public sealed record ShieldFindingRecord
{
    public required string TenantId { get; init; }

    public required ShieldFinding Finding { get; init; }

    /// <summary>The run whose sandbox the finding is about, when known.</summary>
    public string? RunId { get; init; }

    /// <summary>The kept sandbox the finding is about, when it is one (its host-side id).</summary>
    public string? KeptSandboxId { get; init; }

    /// <summary>Where the sandbox ran (<c>local</c>, <c>edge</c>...), when matched.</summary>
    public string? Provider { get; init; }

    /// <summary>
    /// What was done: <c>killed</c> (the sandbox was quarantined), <c>requested</c> (sent to an edge agent to match and
    /// kill), <c>reported</c> (below the threshold), <c>ended</c> (its run had already finished), <c>unmatched</c>.
    /// </summary>
    public required string Action { get; init; }

    public DateTimeOffset ReceivedAt { get; init; }
}

/// <summary>A host-side sandbox id as recorded where its run executed: which tenant's run it was.</summary>
public sealed record ShieldExecutionRecord(string ExecutionId, string TenantId, string RunId, string? Provider);

/// <summary>
/// Shield's state in Azure Tables: tenants' rules (<c>shieldrules</c>, the file in a payload), findings (<c>shieldfindings</c>:
/// partition = tenant, row = event time and finding id, so a tenant lists its own by time and nobody else's), and
/// execution ids (<c>shieldexecutions</c>: partition = Falco's 12-character short id, row = the full id).
/// </summary>
public sealed class ShieldStore(TableProvider tables, PayloadStore payloads, TimeProvider time)
{
    private const string RulesTable = "shieldrules";
    private const string FindingsTable = "shieldfindings";
    private const string ExecutionsTable = "shieldexecutions";
    private const string RulesRow = "rules";
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);
    private readonly ConcurrentDictionary<string, (ShieldTenantRules Rules, DateTimeOffset Until)> _cache = new();

    /// <summary>The tenant's rules (the defaults when it has none), read through a short cache.</summary>
    public async Task<ShieldTenantRules> GetRulesAsync(string tenantId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(tenantId, out var hit) && hit.Until > now)
        {
            return hit.Rules;
        }

        var table = await tables.GetAsync(RulesTable);
        var entity = await table.GetEntityIfExistsAsync<TableEntity>(tenantId, RulesRow, cancellationToken: cancellationToken);
        var rules = ShieldTenantRules.Default;
        if (entity.HasValue && entity.Value is { } e)
        {
            var file = JsonSerializer.Deserialize<Payload>(e.GetString("File"), SandstormJson.Options)!;
            rules = new ShieldTenantRules
            {
                Yaml = await payloads.GetAsync(file, cancellationToken),
                QuarantineThreshold = e.GetString("QuarantineThreshold") ?? "critical",
                Sha256 = e.GetString("Sha256") ?? "",
                RuleNames = JsonSerializer.Deserialize<List<string>>(e.GetString("RuleNames") ?? "[]", SandstormJson.Options) ?? [],
                UpdatedAt = e.GetDateTimeOffset("UpdatedAt"),
            };
        }

        _cache[tenantId] = (rules, now + CacheFor);
        return rules;
    }

    /// <summary>Replaces the tenant's rules (already validated by the caller).</summary>
    public async Task<ShieldTenantRules> SetRulesAsync(string tenantId, string yaml, string threshold, IReadOnlyList<string> ruleNames, CancellationToken cancellationToken)
    {
        var sha = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(yaml)));
        var file = await payloads.PutAsync($"{tenantId}/shield/rules-{sha}.yaml", yaml, cancellationToken);
        var now = time.GetUtcNow();
        var table = await tables.GetAsync(RulesTable);
        await table.UpsertEntityAsync(
            new TableEntity(tenantId, RulesRow)
            {
                ["File"] = JsonSerializer.Serialize(file, SandstormJson.Options),
                ["QuarantineThreshold"] = threshold,
                ["Sha256"] = sha,
                ["RuleNames"] = JsonSerializer.Serialize(ruleNames, SandstormJson.Options),
                ["UpdatedAt"] = now,
            },
            TableUpdateMode.Replace,
            cancellationToken);
        var rules = new ShieldTenantRules { Yaml = yaml, QuarantineThreshold = threshold, Sha256 = sha, RuleNames = ruleNames, UpdatedAt = now };
        _cache[tenantId] = (rules, now + CacheFor);
        return rules;
    }

    /// <summary>Stores a finding, or replaces the stored one with the same event time and id (a re-post, or a match learnt later).</summary>
    public async Task PutFindingAsync(ShieldFindingRecord record, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(FindingsTable);
        await table.UpsertEntityAsync(
            new TableEntity(record.TenantId, FindingRow(record.Finding))
            {
                ["Finding"] = JsonSerializer.Serialize(record.Finding, SandstormJson.Options),
                ["RunId"] = record.RunId,
                ["KeptSandboxId"] = record.KeptSandboxId,
                ["Provider"] = record.Provider,
                ["Action"] = record.Action,
                ["Rule"] = record.Finding.Rule,
                ["Priority"] = record.Finding.Priority,
                ["EventTime"] = record.Finding.EventTime,
                ["ReceivedAt"] = record.ReceivedAt,
            },
            TableUpdateMode.Replace,
            cancellationToken);
    }

    /// <summary>The stored finding with this event time and id, or null.</summary>
    public async Task<ShieldFindingRecord?> GetFindingAsync(string tenantId, ShieldFinding finding, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(FindingsTable);
        var entity = await table.GetEntityIfExistsAsync<TableEntity>(tenantId, FindingRow(finding), cancellationToken: cancellationToken);
        return entity.HasValue && entity.Value is { } e ? FromEntity(e) : null;
    }

    /// <summary>A tenant's findings whose event happened in [from, to), oldest first, at most <paramref name="limit"/>.</summary>
    public async Task<List<ShieldFindingRecord>> ListFindingsAsync(string tenantId, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(FindingsTable);
        var low = Ticks(from);
        var high = Ticks(to);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {tenantId} and RowKey ge {low} and RowKey lt {high}");
        var found = new List<ShieldFindingRecord>();
        await foreach (var e in table.QueryAsync<TableEntity>(filter, maxPerPage: Math.Min(1000, limit), cancellationToken: cancellationToken))
        {
            found.Add(FromEntity(e));
            if (found.Count >= limit)
            {
                break;
            }
        }

        return found;
    }

    /// <summary>Records where a run's sandbox ran under which host-side id, so a late alert naming it still finds the run.</summary>
    public async Task RecordExecutionAsync(ShieldExecutionRecord record, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(ExecutionsTable);
        await table.UpsertEntityAsync(
            new TableEntity(ShortId(record.ExecutionId), record.ExecutionId)
            {
                ["TenantId"] = record.TenantId,
                ["RunId"] = record.RunId,
                ["Provider"] = record.Provider,
                ["RecordedAt"] = time.GetUtcNow(),
            },
            TableUpdateMode.Replace,
            cancellationToken);
    }

    /// <summary>The recorded executions a full id or Falco's 12-character short id names (several only for a short id).</summary>
    public async Task<List<ShieldExecutionRecord>> FindExecutionsAsync(string id, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(id) || id.Length < ShortIdLength || id.Length > 128)
        {
            return [];
        }

        var table = await tables.GetAsync(ExecutionsTable);
        var found = new List<ShieldExecutionRecord>();
        var filter = id.Length == ShortIdLength
            ? TableClient.CreateQueryFilter($"PartitionKey eq {id}")
            : TableClient.CreateQueryFilter($"PartitionKey eq {ShortId(id)} and RowKey eq {id}");
        await foreach (var e in table.QueryAsync<TableEntity>(filter, maxPerPage: 10, cancellationToken: cancellationToken))
        {
            found.Add(new ShieldExecutionRecord(e.RowKey, e.GetString("TenantId"), e.GetString("RunId"), e.GetString("Provider")));
            if (found.Count >= 10)
            {
                break;
            }
        }

        return found;
    }

    private const int ShortIdLength = 12;

    private static string ShortId(string id) => id.Length <= ShortIdLength ? id : id[..ShortIdLength];

    // Event time first (zero-padded ticks) so a time range is a row range; the id keeps two findings of one instant apart.
    private static string FindingRow(ShieldFinding finding) => Ticks(finding.EventTime) + "-" + SafeKey(finding.Id ?? "");

    private static string Ticks(DateTimeOffset at) => Math.Max(0, at.UtcTicks).ToString("D19", CultureInfo.InvariantCulture);

    // Row keys may not hold '/', '\', '#', '?' or control characters: anything else in an id (a Falco uuid) is digested.
    private static string SafeKey(string id) =>
        id.Length is > 0 and <= 200 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')
            ? id
            : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(id)))[..32];

    private static ShieldFindingRecord FromEntity(TableEntity e) => new()
    {
        TenantId = e.PartitionKey,
        Finding = JsonSerializer.Deserialize<ShieldFinding>(e.GetString("Finding"), SandstormJson.Options)!,
        RunId = e.GetString("RunId"),
        KeptSandboxId = e.GetString("KeptSandboxId"),
        Provider = e.GetString("Provider"),
        Action = e.GetString("Action") ?? "unmatched",
        ReceivedAt = e.GetDateTimeOffset("ReceivedAt") ?? default,
    };
}
