using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Contracts;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Reoptimization;

namespace Sandstorm.Routing.Tests;

public sealed class LightGbmRouterTests
{
    private static readonly RoutingModel Model = TestMarket.TrainedModel();

    private static LightGbmRouter Router(double exploration = 0, int seed = 1) =>
        new(new RoutingModelHolder(new Storage.InMemoryModelStore()), new RoutingOptions { ExplorationRate = exploration }, new SeededExplorationRandom(seed));

    [Fact]
    public void Decide_OptimizeCost_PicksCheapAndListsAllCandidatesChosenFirst()
    {
        var d = Router().Decide(TestMarket.Context(TestMarket.Workload(RoutingStrategy.OptimizeCost)), Model);

        Assert.Equal("cheap", d.Chosen.Provider);
        Assert.Same(d.Chosen, d.Candidates[0]);
        Assert.Equal(4, d.Candidates.Count);
        Assert.All(d.Candidates, c => Assert.NotNull(c.PredictedCostUsd));
        Assert.Contains("least predicted cost", d.Reason, StringComparison.Ordinal);
        var costs = d.Candidates.Select(c => c.PredictedCostUsd!.Value).ToList();
        Assert.Equal(costs.Order(), costs);
    }

    [Fact]
    public void Decide_OptimizeLatency_PicksFastAndLearntItsLatency()
    {
        var d = Router().Decide(TestMarket.Context(TestMarket.Workload(RoutingStrategy.OptimizeLatency)), Model);

        Assert.Equal("fast", d.Chosen.Provider);
        Assert.InRange(d.Chosen.PredictedLatencyMs!.Value, 3000, 5500);
        Assert.InRange(d.Candidates.First(c => c.Provider == "cheap").PredictedLatencyMs!.Value, 15_000, 25_000);
    }

    [Fact]
    public void Decide_OptimizeCostWithMaxLatency_TakesCheapestWithinLatency()
    {
        var w = TestMarket.Workload(RoutingStrategy.OptimizeCost, new RunConstraints { MaxLatency = 10_000 });
        var d = Router().Decide(TestMarket.Context(w), Model);

        Assert.Equal("fast", d.Chosen.Provider);
        Assert.All(d.Candidates.Where(c => c.Provider == "cheap"), c => Assert.Contains("maxLatency", c.Rejected, StringComparison.Ordinal));
    }

    [Fact]
    public void Decide_MaxCostTooLow_ThrowsNamingMaxCostAndCheapestCost()
    {
        var w = TestMarket.Workload(RoutingStrategy.OptimizeCost, new RunConstraints { MaxCost = 0.000001m });
        var e = Assert.Throws<NoCandidateException>(() => Router().Decide(TestMarket.Context(w), Model));

        Assert.StartsWith("maxCost 1E-06 USD: cheapest predicted candidate costs ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_MaxLatencyTooLow_ThrowsNamingMaxLatency()
    {
        var w = TestMarket.Workload(RoutingStrategy.OptimizeLatency, new RunConstraints { MaxLatency = 500 });
        var e = Assert.Throws<NoCandidateException>(() => Router().Decide(TestMarket.Context(w), Model));

        Assert.StartsWith("maxLatency 500 ms: fastest predicted candidate takes ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_ExcludedAndPreferredProviders_AreHonoured()
    {
        var deny = TestMarket.Workload(RoutingStrategy.OptimizeCost, new RunConstraints { ExcludeProviders = ["cheap"] });
        var d = Router().Decide(TestMarket.Context(deny), Model);
        Assert.Equal("fast", d.Chosen.Provider);
        Assert.All(d.Candidates.Where(c => c.Provider == "cheap"), c => Assert.Equal("excluded by constraints.excludeProviders", c.Rejected));

        var allow = TestMarket.Workload(RoutingStrategy.OptimizeCost, new RunConstraints { PreferredProviders = ["fast"], AllowedRegions = ["eu-west"] });
        d = Router().Decide(TestMarket.Context(allow), Model);
        Assert.Equal("fast/firecracker/eu-west", d.Chosen.Key);
        Assert.Single(d.Candidates, c => c.Rejected is null);
    }

    [Fact]
    public void Decide_NoModel_UsesPriorPriceCatalogue()
    {
        var d = Router().Decide(TestMarket.Context(TestMarket.Workload()), model: null);

        Assert.Equal("cheap", d.Chosen.Provider);
        Assert.StartsWith("prior", d.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_Exploration_IsDeterministicForASeedAndStaysWithinConstraints()
    {
        var w = TestMarket.Workload(RoutingStrategy.OptimizeLatency, new RunConstraints { MaxLatency = 10_000 });
        var a = Router(exploration: 0.5, seed: 9);
        var b = Router(exploration: 0.5, seed: 9);
        var first = Enumerable.Range(0, 40).Select(_ => a.Decide(TestMarket.Context(w), Model)).ToList();
        var second = Enumerable.Range(0, 40).Select(_ => b.Decide(TestMarket.Context(w), Model)).ToList();

        Assert.Equal(first.Select(d => d.Chosen.Key), second.Select(d => d.Chosen.Key));
        Assert.Contains(first, d => d.Reason.Contains("exploring", StringComparison.Ordinal));
        Assert.All(first, d => Assert.Equal("fast", d.Chosen.Provider));
    }

    [Fact]
    public async Task Predict_PooledEnginesInParallel_MatchSequential()
    {
        var rows = TestMarket.Ledger(2000, seed: 5).Select(RoutingFeatures.Extract).ToList();
        var sequential = new (double, double)[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            sequential[i] = PredictOne(rows[i]);
        }

        var parallel = new (double, double)[rows.Count];
        await Parallel.ForAsync(0, rows.Count, new ParallelOptions { MaxDegreeOfParallelism = 8 }, (i, _) =>
        {
            parallel[i] = PredictOne(rows[i]);
            return ValueTask.CompletedTask;
        });

        Assert.Equal(sequential, parallel);
        Assert.True(sequential.Distinct().Count() > 10);
    }

    private static (double, double) PredictOne(float[] row)
    {
        var cost = new double[1];
        var latency = new double[1];
        Model.Predict([row], cost, latency);
        return (cost[0], latency[0]);
    }

    [Fact]
    public void ToBytes_RoundTrip_PredictsTheSame()
    {
        var copy = RoutingModel.FromBytes(Model.ToBytes());
        var row = RoutingFeatures.Extract(TestMarket.Ledger(1)[0]);
        double[] a = new double[1], b = new double[1], c = new double[1], d = new double[1];
        Model.Predict([row], a, b);
        copy.Predict([row], c, d);

        Assert.Equal(Model.Metadata.Version, copy.Metadata.Version);
        Assert.Equal(a[0], c[0]);
        Assert.Equal(b[0], d[0]);
    }

    [Fact]
    public async Task AddSandstormRouting_Resolves_RouterStoreAndJob()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Routing:ExplorationRate"] = "0.05", ["Routing:Seed"] = "3" }).Build();
        var services = new ServiceCollection()
            .AddSingleton<IRoutingObservationSource>(new InMemoryObservationSource())
            .AddSandstormRouting(configuration)
            .BuildServiceProvider();

        Assert.IsType<LightGbmRouter>(services.GetRequiredService<IRunRouter>());
        Assert.Equal(0.05, services.GetRequiredService<RoutingOptions>().ExplorationRate);
        var report = await services.GetRequiredService<ReoptimizationJob>().RunAsync(CancellationToken.None);
        Assert.False(report.Promoted);
        Assert.Contains("not retrained", report.Summary, StringComparison.Ordinal);
        var decision = await services.GetRequiredService<IRunRouter>().RouteAsync(TestMarket.Context(TestMarket.Workload()), CancellationToken.None);
        Assert.Equal("cheap", decision.Chosen.Provider);
    }
}
