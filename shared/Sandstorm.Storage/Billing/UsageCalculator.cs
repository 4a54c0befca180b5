using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage.Billing;

/// <summary>One billed run as <c>/v1/usage</c> shows it.</summary>
public sealed record UsageRun(
    string RunId,
    DateTimeOffset SettledAt,
    string Provider,
    string Region,
    RunStatus Status,
    decimal ProviderCost,
    decimal AutopilotFee,
    decimal ShieldFee,
    decimal Total,
    string? BaselineProvider,
    decimal? BaselineCost,
    decimal Savings,
    double? CarbonGrams)
{
    public SecurityTier SecurityTier { get; init; }

    /// <summary>Seconds Shield monitored and billed (null: not a Shield run, or one without real coverage).</summary>
    public double? MonitoredSeconds { get; init; }

    /// <summary>Shield's coverage of the run (null: not a Shield run).</summary>
    public ShieldCoverageLevel? ShieldCoverage { get; init; }
}

/// <summary>Sums over a set of runs (all of them, or one provider's).</summary>
public sealed record UsageTotals(
    int Runs,
    decimal ProviderCost,
    decimal AutopilotFees,
    decimal ShieldFees,
    decimal Fees,
    decimal Total,
    int RunsWithBaseline,
    decimal BaselineCost,
    decimal Savings,
    double CarbonGrams,
    int RunsWithCarbon);

/// <summary>A provider's share of the usage.</summary>
public sealed record UsageProvider(string Provider, UsageTotals Totals);

/// <summary>
/// A security tier's share of the usage: its runs, and for Shield the seconds monitored and billed, the fee, and how many
/// runs had real coverage (a Shield run without it pays no Shield fee).
/// </summary>
public sealed record UsageTier(SecurityTier Tier, int Runs, int RunsCovered, double MonitoredSeconds, decimal ShieldFees, decimal Total);

/// <summary>What <c>/v1/usage</c> reports for a tenant and a period: totals, per provider, and per run.</summary>
public sealed record UsageReport(UsageTotals Totals, IReadOnlyList<UsageProvider> Providers, IReadOnlyList<UsageRun> Runs)
{
    /// <summary>Per security tier (basic, shield), in that order, for the tiers that had runs.</summary>
    public IReadOnlyList<UsageTier> Tiers { get; init; } = [];
}

/// <summary>
/// The usage of a period from the ledger rows alone: each tier's fees, Autopilot's baseline and savings per run and in total,
/// grams of CO₂e. The fees are the ones billed at settle (stored on each row), so the report is the bill.
/// </summary>
public static class UsageCalculator
{
    public static UsageReport Compute(IEnumerable<LedgerEntry> entries)
    {
        var runs = entries
            .OrderBy(e => e.SettledAt)
            .ThenBy(e => e.RunId, StringComparer.Ordinal)
            .Select(e => new UsageRun(
                e.RunId, e.SettledAt, e.Provider, e.Region, e.Status, e.ProviderCost, e.AutopilotFee, e.ShieldFee, e.Total,
                e.BaselineProvider, e.BaselineCost, e.Savings, e.CarbonGrams)
            {
                SecurityTier = e.SecurityTier,
                MonitoredSeconds = e.MonitoredSeconds,
                ShieldCoverage = e.ShieldCoverage,
            })
            .ToList();
        var providers = runs
            .GroupBy(r => r.Provider, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => new UsageProvider(g.Key, Sum(g)))
            .ToList();
        var tiers = runs
            .GroupBy(r => r.SecurityTier)
            .OrderBy(g => g.Key)
            .Select(g => new UsageTier(
                g.Key,
                g.Count(),
                g.Count(r => r.MonitoredSeconds is > 0),
                Math.Round(g.Sum(r => r.MonitoredSeconds ?? 0), 3),
                g.Sum(r => r.ShieldFee),
                g.Sum(r => r.Total)))
            .ToList();
        return new UsageReport(Sum(runs), providers, runs) { Tiers = tiers };
    }

    private static UsageTotals Sum(IEnumerable<UsageRun> runs)
    {
        var list = runs as IReadOnlyCollection<UsageRun> ?? runs.ToList();
        return new UsageTotals(
            list.Count,
            list.Sum(r => r.ProviderCost),
            list.Sum(r => r.AutopilotFee),
            list.Sum(r => r.ShieldFee),
            list.Sum(r => r.AutopilotFee + r.ShieldFee),
            list.Sum(r => r.Total),
            list.Count(r => r.BaselineCost is not null),
            list.Sum(r => r.BaselineCost ?? 0m),
            list.Sum(r => r.Savings),
            Math.Round(list.Sum(r => r.CarbonGrams ?? 0), 3),
            list.Count(r => r.CarbonGrams is not null));
    }
}
