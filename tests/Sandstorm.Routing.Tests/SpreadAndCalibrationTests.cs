using Sandstorm.Core.Contracts;
using Sandstorm.Routing.Learning;

namespace Sandstorm.Routing.Tests;

public sealed class SpreadAndCalibrationTests
{
    private static readonly RoutingModel Model = TestMarket.TrainedModel();

    private static LightGbmRouter Router() =>
        new(new RoutingModelHolder(new Storage.InMemoryModelStore()), new RoutingOptions { ExplorationRate = 0 }, new SeededExplorationRandom(1));

    /// <summary>The test model with the given spreads in place of the ones its holdout gave it.</summary>
    private static RoutingModel WithSpreads(params (string Candidate, int Band, double CostSd, double LatencySd)[] spreads)
    {
        var table = new Dictionary<string, ResidualSpread>(StringComparer.Ordinal)
        {
            [ResidualSpreads.Key("*", 0)] = new(0.05, 0.05, 100),
        };
        foreach (var (candidate, band, cost, latency) in spreads)
        {
            table[ResidualSpreads.Key(candidate, band)] = new(cost, latency, 100);
        }

        return Model.WithMetadata(Model.Metadata with { Metrics = Model.Metadata.Metrics with { Spreads = table } });
    }

    [Fact]
    public void Compute_FewRunsOfACandidate_ShrinksItsSpreadTowardsTheBand()
    {
        var rows = new List<(string, int, double, double)>();
        var rng = new Random(3);
        for (var i = 0; i < 400; i++)
        {
            rows.Add(("wide", 0, (rng.NextDouble() - 0.5) * 2, (rng.NextDouble() - 0.5) * 2));
        }

        rows.Add(("tight", 0, 0.01, 0.01));
        rows.Add(("tight", 0, -0.01, -0.01));

        var spreads = ResidualSpreads.Compute(rows);

        var pooled = spreads[ResidualSpreads.Key("*", 0)];
        var tight = ResidualSpreads.Lookup(spreads, "tight", 0);
        Assert.Equal(402, pooled.Count);
        Assert.InRange(pooled.LatencySd, 0.5, 0.65);
        Assert.Equal(2, tight.Count);
        Assert.InRange(tight.LatencySd, 0.8 * pooled.LatencySd, pooled.LatencySd);
        Assert.Same(pooled, ResidualSpreads.Lookup(spreads, "unseen", 0));
        Assert.Same(ResidualSpreads.Default, ResidualSpreads.Lookup(spreads, "unseen", 2));
    }

    [Fact]
    public void Decide_MaxLatency_RejectsACandidateWhoseSpreadPutsItsQuantileOver()
    {
        // fast (~4 s) fits 10 s on its point prediction everywhere, but in us-east its runs scatter by e^±1.
        var model = WithSpreads(("fast/firecracker/us-east", 0, 0.05, 1.0));
        var w = TestMarket.Workload(RoutingStrategy.OptimizeCost, new RunConstraints { MaxLatency = 10_000 });

        var d = Router().Decide(TestMarket.Context(w), model);

        Assert.Equal("fast/firecracker/eu-west", d.Chosen.Key);
        var usEast = d.Candidates.Single(c => c.Key == "fast/firecracker/us-east");
        Assert.Contains("> maxLatency 10000", usEast.Rejected, StringComparison.Ordinal);
        Assert.True(usEast.PredictedLatencyMs < 10_000);
    }

    [Fact]
    public void Decide_OptimizeCost_PrefersTheNarrowerOfTwoEqualMedians()
    {
        // Same median cost (~20 s runs, band 1) in both regions; the wide one's expected cost is e^(σ²/2) ≈ 1.6× higher.
        var narrowFirst = Router().Decide(TestMarket.Context(TestMarket.Workload()), WithSpreads(("cheap/bwrap/eu-west", 1, 1.0, 0.05)));
        var narrowSecond = Router().Decide(TestMarket.Context(TestMarket.Workload()), WithSpreads(("cheap/bwrap/us-east", 1, 1.0, 0.05)));

        Assert.Equal("cheap/bwrap/us-east", narrowFirst.Chosen.Key);
        Assert.Equal("cheap/bwrap/eu-west", narrowSecond.Chosen.Key);
    }

    [Fact]
    public void Correction_ResidualsInOneBand_MoveThatBandMostAndNoOtherCandidate()
    {
        var calibration = new RoutingCalibration(TimeSpan.FromHours(1), shrinkage: 4);
        for (var i = 0; i < 20; i++)
        {
            calibration.Observe("slow/x/us-east", band: 2, TestMarket.Now, 0.0, 0.3);
        }

        var (_, long_) = calibration.Correction("slow/x/us-east", 2, TestMarket.Now);
        var (_, short_) = calibration.Correction("slow/x/us-east", 0, TestMarket.Now);
        var (_, later) = calibration.Correction("slow/x/us-east", 2, TestMarket.Now.AddHours(3));

        Assert.InRange(long_, 0.25, 0.3);
        Assert.InRange(short_, 0.2, long_ - 0.01);
        Assert.InRange(later, 0.01, short_);
        Assert.Equal((0.0, 0.0), calibration.Correction("other/x/us-east", 2, TestMarket.Now));
    }

    [Fact]
    public void Observe_SuccessfulRun_LearnsItsResidualOnceAgainstTheUncorrectedHeads()
    {
        var holder = new RoutingModelHolder(new Storage.InMemoryModelStore());
        var router = new LightGbmRouter(holder, new RoutingOptions { ExplorationRate = 0 }, new SeededExplorationRandom(1));
        var chosen = router.Decide(TestMarket.Context(TestMarket.Workload()), Model).Chosen;

        router.Observe(chosen, TestMarket.Now, chosen.PredictedCostUsd!.Value * 2, chosen.PredictedLatencyMs!.Value, ok: true);
        router.Observe(chosen, TestMarket.Now, chosen.PredictedCostUsd!.Value * 50, chosen.PredictedLatencyMs!.Value * 50, ok: false);

        var (cost, latency) = holder.Calibration.Correction(chosen.Key, ResidualSpreads.Band(chosen.PredictedLatencyMs.Value), TestMarket.Now);
        Assert.InRange(cost, 0.1, Math.Log(2));
        Assert.Equal(0, latency, 6);
    }
}
