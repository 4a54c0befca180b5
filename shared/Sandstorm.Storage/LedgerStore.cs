using Azure;
using Azure.Data.Tables;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage;

/// <summary>The billing ledger in Azure Tables: partition = tenant, row = run id, so a run can only be billed once.</summary>
public sealed class LedgerStore(TableProvider tables)
{
    private const string Table = "ledger";

    /// <summary>Adds the entry, or returns the one already there (a retried or replayed settle bills nothing twice).</summary>
    public async Task<(LedgerEntry Entry, bool Added)> AddOnceAsync(LedgerEntry entry, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        try
        {
            await table.AddEntityAsync(ToEntity(entry), cancellationToken);
            return (entry, true);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            var existing = await table.GetEntityAsync<TableEntity>(entry.TenantId, entry.RunId, cancellationToken: cancellationToken);
            return (FromEntity(existing.Value), false);
        }
    }

    public async Task<LedgerEntry?> GetAsync(string tenantId, string runId, CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var response = await table.GetEntityIfExistsAsync<TableEntity>(tenantId, runId, cancellationToken: cancellationToken);
        return response.HasValue ? FromEntity(response.Value!) : null;
    }

    /// <summary>A tenant's entries settled in [from, to).</summary>
    public async IAsyncEnumerable<LedgerEntry> QueryAsync(
        string tenantId,
        DateTimeOffset from,
        DateTimeOffset to,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {tenantId} and SettledAt ge {from} and SettledAt lt {to}");
        await foreach (var e in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            yield return FromEntity(e);
        }
    }

    /// <summary>All tenants' entries settled since <paramref name="since"/> (training data for the router).</summary>
    public async IAsyncEnumerable<LedgerEntry> QuerySinceAsync(
        DateTimeOffset since,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var table = await tables.GetAsync(Table);
        var filter = TableClient.CreateQueryFilter($"SettledAt ge {since}");
        await foreach (var e in table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken))
        {
            yield return FromEntity(e);
        }
    }

    private static TableEntity ToEntity(LedgerEntry l) => new(l.TenantId, l.RunId)
    {
        ["Provider"] = l.Provider,
        ["Runtime"] = l.Runtime,
        ["Region"] = l.Region,
        ["Status"] = l.Status.ToString(),
        ["Kind"] = l.Kind,
        // Money as strings: Tables has no decimal type and doubles would drift.
        ["ProviderCost"] = l.ProviderCost.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Fees"] = l.Fees.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Total"] = l.Total.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["AutopilotFee"] = l.AutopilotFee.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["ShieldFee"] = l.ShieldFee.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["BaselineProvider"] = l.BaselineProvider,
        ["BaselineCost"] = l.BaselineCost?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Savings"] = l.Savings.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["MonitoredSeconds"] = l.MonitoredSeconds,
        ["ShieldCoverage"] = l.ShieldCoverage?.ToString(),
        ["CarbonGrams"] = l.CarbonGrams,
        ["SecurityTier"] = l.SecurityTier.ToString(),
        ["Requirements"] = l.Requirements,
        ["Files"] = l.Files,
        ["PreferredRegion"] = l.PreferredRegion,
        ["DurationMs"] = l.DurationMs,
        ["CpuMs"] = l.CpuMs,
        ["PeakMemoryBytes"] = l.PeakMemoryBytes,
        ["LatencyMs"] = l.LatencyMs,
        ["SettledAt"] = l.SettledAt,
        ["Language"] = l.Language,
        ["CodeLength"] = l.CodeLength,
        ["Cpu"] = l.Cpu,
        ["MemoryMiB"] = l.MemoryMiB,
        ["TimeoutMs"] = l.TimeoutMs,
        ["IsolationLevel"] = l.IsolationLevel.ToString(),
        ["Strategy"] = l.Strategy.ToString(),
        ["PredictedCostUsd"] = l.PredictedCostUsd,
        ["PredictedLatencyMs"] = l.PredictedLatencyMs,
    };

    private static LedgerEntry FromEntity(TableEntity e) => new()
    {
        TenantId = e.PartitionKey,
        RunId = e.RowKey,
        Provider = e.GetString("Provider"),
        Runtime = e.GetString("Runtime"),
        Region = e.GetString("Region"),
        Status = Enum.Parse<RunStatus>(e.GetString("Status")),
        Kind = e.GetString("Kind") ?? LedgerEntry.RunKind,
        ProviderCost = decimal.Parse(e.GetString("ProviderCost"), System.Globalization.CultureInfo.InvariantCulture),
        Fees = decimal.Parse(e.GetString("Fees"), System.Globalization.CultureInfo.InvariantCulture),
        Total = decimal.Parse(e.GetString("Total"), System.Globalization.CultureInfo.InvariantCulture),
        AutopilotFee = Money(e, "AutopilotFee") ?? 0m,
        ShieldFee = Money(e, "ShieldFee") ?? 0m,
        BaselineProvider = e.GetString("BaselineProvider"),
        BaselineCost = Money(e, "BaselineCost"),
        Savings = Money(e, "Savings") ?? 0m,
        MonitoredSeconds = e.GetDouble("MonitoredSeconds"),
        ShieldCoverage = Enum.TryParse<ShieldCoverageLevel>(e.GetString("ShieldCoverage"), out var coverage) ? coverage : null,
        CarbonGrams = e.GetDouble("CarbonGrams"),
        SecurityTier = Enum.TryParse<SecurityTier>(e.GetString("SecurityTier"), out var tier) ? tier : SecurityTier.Basic,
        Requirements = e.GetInt32("Requirements") ?? 0,
        Files = e.GetInt32("Files") ?? 0,
        PreferredRegion = e.GetString("PreferredRegion"),
        DurationMs = e.GetInt64("DurationMs") ?? 0,
        CpuMs = e.GetInt64("CpuMs") ?? 0,
        PeakMemoryBytes = e.GetInt64("PeakMemoryBytes") ?? 0,
        LatencyMs = e.GetInt64("LatencyMs") ?? 0,
        SettledAt = e.GetDateTimeOffset("SettledAt") ?? default,
        Language = e.GetString("Language") ?? "",
        CodeLength = e.GetInt32("CodeLength") ?? 0,
        Cpu = e.GetDouble("Cpu") ?? 0,
        MemoryMiB = e.GetInt32("MemoryMiB") ?? 0,
        TimeoutMs = e.GetInt32("TimeoutMs") ?? 0,
        IsolationLevel = Enum.TryParse<IsolationLevel>(e.GetString("IsolationLevel"), out var level) ? level : IsolationLevel.None,
        Strategy = Enum.TryParse<RoutingStrategy>(e.GetString("Strategy"), out var strategy) ? strategy : RoutingStrategy.Balanced,
        PredictedCostUsd = e.GetDouble("PredictedCostUsd"),
        PredictedLatencyMs = e.GetDouble("PredictedLatencyMs"),
    };

    private static decimal? Money(TableEntity e, string name) =>
        e.GetString(name) is { Length: > 0 } text ? decimal.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : null;
}
