using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Market;
using Sandstorm.Routing.Regions;
using Sandstorm.Routing.Reoptimization;

namespace Sandstorm.Routing.Tests;

public sealed class RegionsCarbonAndLearningTests
{
    private static readonly RoutingModel Model = TestMarket.TrainedModel();

    private static (LightGbmRouter Router, RoutingModelHolder Holder, RoutingMarketState Market) NewRouter()
    {
        var holder = new RoutingModelHolder(new Storage.InMemoryModelStore());
        var market = new RoutingMarketState();
        return (new LightGbmRouter(holder, new RoutingOptions { ExplorationRate = 0 }, new SeededExplorationRandom(1), market), holder, market);
    }

    [Fact]
    public void Decide_PreferredRegionWithNoCandidateThere_StillPlacesTheRunElsewhere()
    {
        var w = TestMarket.Workload(RoutingStrategy.OptimizeLatency, new RunConstraints { PreferredRegion = "ap-south" });

        var d = NewRouter().Router.Decide(TestMarket.Context(w), Model);

        Assert.Equal("fast", d.Chosen.Provider);
        Assert.Equal(4, d.Candidates.Count(c => c.Rejected is null));
    }

    [Fact]
    public void Decide_PreferredRegionWeight_PricesTheHopIntoTheChoice()
    {
        // Without a weight the two regions of "fast" are close; a heavy weight for a caller in eu-west keeps it there.
        var w = TestMarket.Workload(RoutingStrategy.OptimizeLatency, new RunConstraints { PreferredRegion = "eu-west", PreferredRegionWeight = 50 });

        var d = NewRouter().Router.Decide(TestMarket.Context(w), Model);

        Assert.Equal("fast/firecracker/eu-west", d.Chosen.Key);
        var us = d.Candidates.Single(c => c.Key == "fast/firecracker/us-east");
        Assert.Contains("region preference adds", us.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_AllowedResidencySet_ExcludesOtherRegions()
    {
        var w = TestMarket.Workload(RoutingStrategy.OptimizeCost, new RunConstraints { AllowedRegions = ["eu"] });

        var d = NewRouter().Router.Decide(TestMarket.Context(w), Model);

        Assert.All(d.Candidates.Where(c => c.Rejected is null), c => Assert.Equal("eu-west", c.Region));
        Assert.All(d.Candidates.Where(c => c.Region == "us-east"), c => Assert.StartsWith("region not in constraints.allowedRegions [eu]", c.Rejected, StringComparison.Ordinal));
    }

    [Fact]
    public void Decide_AllowedRegionsNoProviderServes_RefusesWithNoCandidateNamingTheRegions()
    {
        var w = TestMarket.Workload(RoutingStrategy.OptimizeCost, new RunConstraints { AllowedRegions = ["ap"] });

        var e = Assert.Throws<NoCandidateException>(() => NewRouter().Router.Decide(TestMarket.Context(w), Model));

        Assert.Equal(ErrorCodes.NoCandidate, e.Code);
        Assert.StartsWith("no candidate in constraints.allowedRegions [ap] can run isolation level 'standard'; it runs in ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decide_EveryCandidate_SaysWhyItWonOrLost_AndTheBaselineIsPriced()
    {
        var d = NewRouter().Router.Decide(TestMarket.Context(TestMarket.Workload(RoutingStrategy.OptimizeCost)), Model);

        Assert.StartsWith("chosen: least predicted cost", d.Chosen.Why, StringComparison.Ordinal);
        Assert.All(d.Candidates.Skip(1), c => Assert.Matches(@"^fallback \d: .*expected cost \d+\.\d\d× the chosen's", c.Why!));
        Assert.All(d.Candidates, c => Assert.NotNull(c.PredictedLatencyMs));
        // No baseline configured: the cloud provider with the lowest list price ("cheap"), in its best region.
        Assert.Equal("cheap", d.Baseline!.Provider);
        Assert.True(d.Baseline.PredictedCostUsd > 0);
    }

    [Fact]
    public void Decide_OptimizeCarbon_PicksTheCleanerGrid_AndMaxCarbonRefusesWhenNothingFits()
    {
        var (router, _, market) = NewRouter();
        market.SetCarbon(new GridIntensity(GridIntensityDocument.Parse("""
            {"kind":"sandstorm.grid-intensity","version":"t1","takenAt":"2026-11-28","unit":"gCO2e/kWh",
             "regions":{"us-east":{"hourly":[400,400,400,400,400,400,400,400,400,400,400,400,400,400,400,400,400,400,400,400,400,400,400,400]},
                        "eu-west":{"hourly":[50,50,50,50,50,50,50,50,50,50,50,50,50,50,50,50,50,50,50,50,50,50,50,50]}}}
            """)));

        var d = router.Decide(TestMarket.Context(TestMarket.Workload(RoutingStrategy.OptimizeCarbon)), Model);

        Assert.Equal("eu-west", d.Chosen.Region);
        Assert.Contains("least predicted carbon", d.Reason, StringComparison.Ordinal);
        Assert.True(d.Candidates.First(c => c.Region == "us-east").PredictedCarbonGrams > d.Chosen.PredictedCarbonGrams);

        var tiny = TestMarket.Workload(RoutingStrategy.OptimizeCarbon, new RunConstraints { MaxCarbon = 1e-9 });
        var e = Assert.Throws<NoCandidateException>(() => router.Decide(TestMarket.Context(tiny), Model));
        Assert.StartsWith("maxCarbon 1E-09 g CO2e", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Observe_PlacementTurnsTwiceAsSlow_NextDecisionsMoveAwayWithinAFewRuns()
    {
        var (router, _, _) = NewRouter();
        var w = TestMarket.Workload(RoutingStrategy.OptimizeLatency);
        var context = TestMarket.Context(w);
        var first = router.Decide(context, Model).Chosen;
        Assert.Equal("fast", first.Provider);

        // Every run on the first placement now takes twice what was predicted; its twin in the other region does not.
        var moved = -1;
        for (var i = 0; i < 200 && moved < 0; i++)
        {
            var chosen = router.Decide(context, Model).Chosen;
            if (chosen.Key != first.Key)
            {
                moved = i;
                break;
            }

            router.Observe(new RoutingObservation
            {
                RunId = $"r{i}",
                Time = TestMarket.Now,
                Workload = w,
                Route = new RouteCandidate(chosen.Provider, chosen.Runtime, chosen.Region),
                Price = TestMarket.TwoProviders()[1].Price,
                CostUsd = chosen.PredictedCostUsd!.Value * 2,
                LatencyMs = chosen.PredictedLatencyMs!.Value * 2,
                Ok = true,
                PredictedCostUsd = chosen.PredictedCostUsd,
                PredictedLatencyMs = chosen.PredictedLatencyMs,
            });
        }

        Assert.InRange(moved, 1, 100);
    }

    [Theory]
    [InlineData("eu", "eu-west", true)]
    [InlineData("eu", "westeurope", true)]
    [InlineData("eu", "us-east", false)]
    [InlineData("eu", "uksouth", false)]
    [InlineData("us", "us-east-1", true)]
    [InlineData("us-east", "us-east-1", true)]
    [InlineData("eu", "mars-1", false)]
    public void Allows_ResidencySetsAndAliases(string allowed, string region, bool expected) =>
        Assert.Equal(expected, RegionCatalog.Default.Allows([allowed], region));

    [Fact]
    public void RoundTripMs_KnownPairs_AreNearPublishedFigures()
    {
        Assert.Equal(0, RegionCatalog.Default.RoundTripMs("us-east", "us-east-1"));
        Assert.InRange(RegionCatalog.Default.RoundTripMs("us-east", "eu-west"), 65, 95);
        Assert.InRange(RegionCatalog.Default.RoundTripMs("us-east", "ap-south"), 160, 230);
        Assert.Equal(RegionCatalog.UnknownRoundTripMs, RegionCatalog.Default.RoundTripMs("us-east", "mars-1"));
    }
}
