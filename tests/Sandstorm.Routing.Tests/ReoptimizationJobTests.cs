using Sandstorm.Core.Contracts;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Reoptimization;
using Sandstorm.Routing.Storage;

namespace Sandstorm.Routing.Tests;

public sealed class ReoptimizationJobTests
{
    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private sealed class Prices(IReadOnlyDictionary<string, PriceSheet> sheets) : IPriceFeed
    {
        public Task<IReadOnlyDictionary<string, PriceSheet>> GetPricesAsync(CancellationToken cancellationToken) => Task.FromResult(sheets);
    }

    private sealed class Catalog : IRoutingMarketSource
    {
        public Task<IReadOnlyList<ProviderCapabilities>> GetProvidersAsync(CancellationToken cancellationToken) => Task.FromResult(TestMarket.TwoProviders());

        public Task<IReadOnlyDictionary<string, ProviderHealth>> GetHealthAsync(CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyDictionary<string, ProviderHealth>>(new Dictionary<string, ProviderHealth>());
    }

    [Fact]
    public async Task RunAsync_BetterThanPrior_PromotesAndStores_ThenSameDataIsNotPromoted()
    {
        var source = new InMemoryObservationSource();
        foreach (var o in TestMarket.Ledger(500))
        {
            source.Add(o);
        }

        var store = new InMemoryModelStore();
        var holder = new RoutingModelHolder(store);
        var market = new RoutingMarketState();
        var cut = new PriceSheet { VcpuSecond = 0.000004, GibSecond = 0.000001, GranularitySeconds = 1 };
        var options = new RoutingOptions { Trainer = new TrainerSettings { Iterations = 60 } };
        var job = new ReoptimizationJob(source, store, holder, market, options, new FixedClock(TestMarket.Now.AddMinutes(1)),
            new Prices(new Dictionary<string, PriceSheet> { ["cheap"] = cut }), marketSource: new Catalog());

        var first = await job.RunAsync(CancellationToken.None);

        Assert.True(first.Promoted, first.Summary);
        Assert.Null(first.CurrentVersion);
        Assert.True(first.CandidateMetrics!.Score < first.CurrentMetrics!.Score);
        Assert.Equal(first.CandidateVersion, holder.Current!.Metadata.Version);
        Assert.Equal(first.CandidateVersion, (await store.GetCurrentAsync(CancellationToken.None))!.Metadata.Version);
        Assert.Equal(TestMarket.Now.AddMinutes(1) - options.TrainingWindow, holder.Current.Metadata.WindowFrom);
        Assert.Single(first.PriceChanges);
        Assert.Equal(cut, market.Prices["cheap"]);
        Assert.NotNull(first.ExpectedSavingsUsdPer1000Runs);

        var second = await job.RunAsync(CancellationToken.None);

        Assert.False(second.Promoted, second.Summary);
        Assert.StartsWith("kept", second.Summary, StringComparison.Ordinal);
        Assert.Equal(first.CandidateVersion, holder.Current.Metadata.Version);
        Assert.Empty(second.PriceChanges);
        Assert.Equal(2, store.Reports.Count);
    }

    [Fact]
    public async Task RunAsync_WorseCandidate_KeepsCurrentModel()
    {
        // The current model learnt the real ledger; the new window is noise (costs and latencies shuffled across runs).
        var store = new InMemoryModelStore();
        var holder = new RoutingModelHolder(store);
        var good = TestMarket.TrainedModel(600);
        holder.Promote(good);
        var rng = new Random(3);
        var ledger = TestMarket.Ledger(400, seed: 8);
        var shuffled = ledger.Select(o => o with { LatencyMs = ledger[rng.Next(ledger.Count)].LatencyMs, CostUsd = ledger[rng.Next(ledger.Count)].CostUsd }).ToList();
        var source = new InMemoryObservationSource();
        foreach (var o in shuffled[..320].Concat(ledger[320..]))
        {
            source.Add(o);
        }

        var job = new ReoptimizationJob(source, store, holder, new RoutingMarketState(), new RoutingOptions { Trainer = new TrainerSettings { Iterations = 60 } }, new FixedClock(TestMarket.Now.AddMinutes(1)));
        var report = await job.RunAsync(CancellationToken.None);

        Assert.False(report.Promoted, report.Summary);
        Assert.Same(good, holder.Current);
        Assert.True(report.CandidateMetrics!.Score >= report.CurrentMetrics!.Score * 0.99);
    }
}
