using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Routing.Learning;

namespace Sandstorm.Routing.Tests;

public sealed class FeatureAndEnumeratorTests
{
    [Fact]
    public void Extract_WorkloadCandidateAndTime_FillsEachSlot()
    {
        var w = TestMarket.Workload() with { Requirements = 3, Files = 2, Cpu = 2, MemoryMiB = 2048, IsolationLevel = IsolationLevel.Strong, Stateful = true };
        var provider = TestMarket.TwoProviders()[0];
        var health = new ProviderHealth { P50LatencyMs = 900, P95LatencyMs = 2500, FailureRate = 0.1, QueueDepth = 4 };
        var candidate = new Candidate(new RouteCandidate("cheap", "bwrap", "eu-west"), provider, provider.Runtimes[0], health);
        var at = new DateTimeOffset(2026, 11, 28, 13, 30, 0, TimeSpan.Zero); // a Saturday

        var f = RoutingFeatures.Extract(w, candidate, at);

        Assert.Equal(RoutingFeatures.Count, f.Length);
        Assert.Equal(RoutingFeatures.Count, RoutingFeatures.Names.Count);
        Assert.Equal(RoutingFeatures.Hash("python"), f[0]);
        Assert.Equal(Math.Log(801), f[1], 4);
        Assert.Equal(3, f[2]);
        Assert.Equal(2, f[3]);
        Assert.Equal(2, f[4]);
        Assert.Equal(2, f[5]);
        Assert.Equal(60, f[6]);
        Assert.Equal((float)IsolationLevel.Strong, f[7]);
        Assert.Equal(1, f[8]);
        Assert.Equal(RoutingFeatures.Hash("cheap"), f[9]);
        Assert.Equal(RoutingFeatures.Hash("eu-west"), f[11]);
        Assert.Equal(RoutingFeatures.Hash("cheap/bwrap/eu-west"), f[12]);
        Assert.Equal(((2 * 0.000005) + (2 * 0.000001)) * 1e6, f[16], 4);
        Assert.DoesNotContain(900f, f);
        Assert.Equal(0.1f, f[19]);
        Assert.Equal(1, f[20]);
        Assert.Equal(4, f[21]);
        Assert.Equal(13.5f, f[22]);
        Assert.Equal((float)DayOfWeek.Saturday, f[23]);
    }

    [Fact]
    public void Hash_SameValue_IsStableAndInUnitInterval()
    {
        Assert.Equal(RoutingFeatures.Hash("e2b/firecracker/us-east"), RoutingFeatures.Hash("e2b/firecracker/us-east"));
        Assert.NotEqual(RoutingFeatures.Hash("us-east"), RoutingFeatures.Hash("eu-west"));
        Assert.InRange(RoutingFeatures.Hash("modal"), 0, 1);
    }

    [Fact]
    public void WorkloadFrom_RequirementsFile_CountsNonCommentLines()
    {
        var w = Workload.From(RunIntent.Of(new RunRequest
        {
            Code = "print(1)",
            Language = "python",
            Files = new Dictionary<string, string> { ["requirements.txt"] = "numpy\n# comment\n\npandas==2\n", ["a.csv"] = "x" },
        }));
        Assert.Equal(2, w.Requirements);
        Assert.Equal(2, w.Files);
        Assert.Equal(8, w.CodeLength);
    }

    [Fact]
    public void Enumerate_RuntimeListedForSeveralLevels_ServesEachOnce()
    {
        var multi = new ProviderCapabilities
        {
            Provider = "e2b",
            Runtimes = [new RuntimeOffer("firecracker", IsolationLevel.Standard), new RuntimeOffer("firecracker", IsolationLevel.Maximum)],
            Regions = ["us-east"],
            Languages = Languages.Supported,
            Price = new PriceSheet { VcpuSecond = 0.000014 },
        };
        foreach (var level in new[] { IsolationLevel.Standard, IsolationLevel.Maximum })
        {
            var (feasible, rejected) = CandidateEnumerator.Enumerate(TestMarket.Context(TestMarket.Workload() with { IsolationLevel = level }, [multi]));
            Assert.Single(feasible);
            Assert.Equal(level, feasible[0].Runtime.Isolation);
            Assert.Empty(rejected);
        }

        var refused = Assert.Throws<NoCandidateException>(() =>
            CandidateEnumerator.Enumerate(TestMarket.Context(TestMarket.Workload() with { IsolationLevel = IsolationLevel.Strong }, [multi])));
        Assert.Equal(ErrorCodes.IsolationUnavailable, refused.Code);
        Assert.Contains("no provider offers isolation level 'strong'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("e2b: standard/maximum", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Enumerate_RegionalHealthEntry_OverridesProviderEntry()
    {
        var health = new Dictionary<string, ProviderHealth>
        {
            ["cheap"] = new() { P50LatencyMs = 100 },
            [CandidateEnumerator.HealthKey("cheap", "eu-west")] = new() { Available = false },
        };
        var context = TestMarket.Context(TestMarket.Workload()) with { Health = health };

        var (feasible, rejected) = CandidateEnumerator.Enumerate(context);

        Assert.DoesNotContain(feasible, c => c.Route.Key == "cheap/bwrap/eu-west");
        Assert.Contains(rejected, c => c.Key == "cheap/bwrap/eu-west" && c.Rejected!.Contains("unavailable", StringComparison.Ordinal));
        Assert.Equal(100, feasible.Single(c => c.Route.Key == "cheap/bwrap/us-east").Health.P50LatencyMs);
    }

    [Fact]
    public async Task RuleBasedRouter_StrongRunOnStandardOnlyMarket_RefusesNamingLevel()
    {
        var context = TestMarket.Context(TestMarket.Workload() with { IsolationLevel = IsolationLevel.Strong });
        var e = await Assert.ThrowsAsync<NoCandidateException>(async () => await new RuleBasedRouter().RouteAsync(context, CancellationToken.None));
        Assert.Equal(ErrorCodes.IsolationUnavailable, e.Code);
        Assert.Contains("'strong'", e.Message, StringComparison.Ordinal);
    }
}
