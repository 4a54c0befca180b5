using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Pricing;
using Sandstorm.Storage;
using Sandstorm.Storage.Billing;
using Sandstorm.Testing;

namespace Sandstorm.Orchestrations.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class UsageBillTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset March = new(2027, 3, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Compute_AMonthFromTheLedger_RecomputesEachTiersFeesBaselineSavingsAndCarbon()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Storage"] = azurite.ConnectionString,
            ["Sandstorm:Storage:Prefix"] = "u" + Guid.NewGuid().ToString("N")[..10],
        }).Build();
        await using var sp = new ServiceCollection().AddSandstormStorage(configuration).BuildServiceProvider();
        var ledger = sp.GetRequiredService<LedgerStore>();

        // A month of runs as Settle bills them: cloud runs cheaper and dearer than their baseline, runs without one,
        // Shield runs with and without coverage, edge runs; and one run in the next month that must not count.
        var rng = new Random(4);
        var providers = new[] { "e2b", "modal", "daytona", "edge" };
        var written = new List<(decimal Provider, decimal? Baseline, double? Monitored, SecurityTier Tier, string Name, double? Carbon)>();
        for (var i = 0; i < 120; i++)
        {
            var provider = providers[i % providers.Length];
            var providerCost = Math.Round((decimal)(rng.NextDouble() * 0.02), 8);
            decimal? baseline = i % 5 == 0 ? null : Math.Round(providerCost * (decimal)(0.7 + (rng.NextDouble() * 0.8)), 8);
            var tier = i % 3 == 0 ? SecurityTier.Shield : SecurityTier.Basic;
            double? monitored = tier == SecurityTier.Shield && i % 2 == 0 ? Math.Round(rng.NextDouble() * 60, 3) : null;
            double? carbon = i % 7 == 0 ? null : Math.Round(rng.NextDouble(), 6);
            var fees = TierFees.Compute(new FeeInput(provider, providerCost, tier)
            {
                BaselineCost = baseline,
                Shield = monitored is { } s ? new ShieldCoverage(s) : null,
            });
            await ledger.AddOnceAsync(Entry($"run-{i:000}", March.AddHours(i * 5), provider, fees, tier, monitored, carbon), CancellationToken.None);
            written.Add((providerCost, baseline, monitored, tier, provider, carbon));
        }

        await ledger.AddOnceAsync(
            Entry("run-april", March.AddMonths(1), "e2b", TierFees.Compute(new FeeInput("e2b", 1m, SecurityTier.Basic) { BaselineCost = 2m }), SecurityTier.Basic, null, 5),
            CancellationToken.None);

        var rows = new List<LedgerEntry>();
        await foreach (var e in ledger.QueryAsync("tenant-bill", March, March.AddMonths(1), CancellationToken.None))
        {
            rows.Add(e);
        }

        var bill = UsageCalculator.Compute(rows);

        // The documented rules, written out again here rather than taken from TierFees.
        decimal Autopilot((decimal Provider, decimal? Baseline, double? Monitored, SecurityTier Tier, string Name, double? Carbon) r) =>
            r.Name == "edge" || r.Baseline is null ? 0m : Math.Round(Math.Max(0m, r.Baseline.Value - r.Provider) * 0.08m, 8, MidpointRounding.AwayFromZero);
        decimal Shield((decimal Provider, decimal? Baseline, double? Monitored, SecurityTier Tier, string Name, double? Carbon) r) =>
            r.Tier == SecurityTier.Shield && r.Monitored is { } s ? Math.Round((decimal)s * 0.002m, 8, MidpointRounding.AwayFromZero) : 0m;
        Assert.Equal(120, bill.Totals.Runs);
        Assert.Equal(written.Sum(r => r.Provider), bill.Totals.ProviderCost);
        Assert.Equal(written.Sum(Autopilot), bill.Totals.AutopilotFees);
        Assert.Equal(written.Sum(Shield), bill.Totals.ShieldFees);
        Assert.Equal(written.Sum(r => r.Provider + Autopilot(r) + Shield(r)), bill.Totals.Total);
        Assert.Equal(written.Where(r => r.Name != "edge" && r.Baseline is not null).Sum(r => Math.Max(0m, r.Baseline!.Value - r.Provider)), bill.Totals.Savings);
        Assert.Equal(written.Count(r => r.Name != "edge" && r.Baseline is not null), bill.Totals.RunsWithBaseline);
        Assert.Equal(Math.Round(written.Sum(r => r.Carbon ?? 0), 3), bill.Totals.CarbonGrams);
        Assert.True(bill.Totals.AutopilotFees > 0 && bill.Totals.ShieldFees > 0);
        Assert.Equal(bill.Totals.Total, bill.Providers.Sum(p => p.Totals.Total));
        Assert.Equal(0m, bill.Providers.Single(p => p.Provider == "edge").Totals.AutopilotFees);
        Assert.All(bill.Runs, r => Assert.Equal(r.ProviderCost + r.AutopilotFee + r.ShieldFee, r.Total));
        Assert.All(bill.Runs.Where(r => r.BaselineCost is { } b && b < r.ProviderCost), r => Assert.Equal(0m, r.AutopilotFee));
    }

    private static LedgerEntry Entry(string runId, DateTimeOffset settled, string provider, FeeBreakdown fees, SecurityTier tier, double? monitored, double? carbon) => new()
    {
        TenantId = "tenant-bill",
        RunId = runId,
        Provider = provider,
        Runtime = "rt",
        Region = "us-east",
        Status = RunStatus.Succeeded,
        ProviderCost = fees.ProviderCost,
        AutopilotFee = fees.AutopilotFee,
        ShieldFee = fees.ShieldFee,
        Fees = fees.Fees,
        Total = fees.Total,
        BaselineProvider = fees.BaselineCost is null ? null : "e2b",
        BaselineCost = fees.BaselineCost,
        Savings = fees.Savings,
        MonitoredSeconds = monitored,
        CarbonGrams = carbon,
        SecurityTier = tier,
        SettledAt = settled,
        LatencyMs = 1000,
    };
}
