using Sandstorm.Core.Contracts;
using Sandstorm.Routing.Simulation;

namespace Sandstorm.Routing.Tests;

public sealed class TraceAndReplayTests
{
    private const string Market = """{"type":"market","providers":[{"id":"e2b","runtime":"firecracker","isolation":["standard","strong","maximum"],"regions":["us-east","eu-west"],"price":{"vcpuSecond":0.000014,"gibSecond":0.0000045,"minimumSeconds":0,"granularitySeconds":1}},{"id":"edge","runtime":"runsc","isolation":["standard"],"regions":["eu-west"],"price":{"vcpuSecond":0.0000055,"gibSecond":0,"minimumSeconds":60,"granularitySeconds":60}}]}""";
    private const string Request = """{"type":"request","seq":1,"time":"2026-11-28T10:00:00Z","request":{"language":"python","codeLength":512,"cpu":1,"memory":512,"timeout":30000,"isolationLevel":"standard","strategy":"optimize_cost","constraints":{"maxCost":0.01,"maxLatency":5000,"preferredRegion":"eu-west"}},"outcomes":{"e2b/firecracker/eu-west":{"ok":true,"latencyMs":812.4,"costUsd":0.000123},"edge/runsc/eu-west":{"ok":false,"latencyMs":300,"costUsd":0.00033}}}""";
    private const string Price = """{"type":"price","time":"2026-11-28T11:00:00Z","provider":"e2b","price":{"vcpuSecond":0.00001,"gibSecond":0.000004,"minimumSeconds":0,"granularitySeconds":1}}""";

    [Fact]
    public void Parse_DocumentedFormat_ReadsMarketRequestsAndPrices()
    {
        var trace = TraceSerializer.Parse(string.Join('\n', Market, Request, "", Price));

        Assert.Equal(2, trace.Providers.Count);
        Assert.Equal([IsolationLevel.Standard, IsolationLevel.Strong, IsolationLevel.Maximum], trace.Providers[0].Isolation);
        Assert.Equal(60, trace.Providers[1].Price.MinimumSeconds);
        var r = Assert.IsType<TraceRequestEvent>(trace.Events[0]);
        Assert.Equal(RoutingStrategy.OptimizeCost, r.Request.Strategy);
        Assert.Equal(0.01m, r.Request.Constraints!.MaxCost);
        Assert.Equal("eu-west", r.Request.Constraints.PreferredRegion);
        Assert.Equal(new TraceOutcome(true, 812.4, 0.000123), r.Outcomes["e2b/firecracker/eu-west"]);
        Assert.False(r.Outcomes["edge/runsc/eu-west"].Ok);
        var p = Assert.IsType<TracePriceEvent>(trace.Events[1]);
        Assert.Equal(0.00001, p.Price.VcpuSecond);

        var caps = MarketTrace.Capabilities(trace.Providers);
        Assert.Equal(3, caps[0].Runtimes.Count);
    }

    [Theory]
    [InlineData(1, "{\"type\":\"request\"}", "first line must be of type \"market\"")]
    [InlineData(2, "{\"type\":\"request\",\"seq\":2,\"time\":\"2026-11-28T10:00:00Z\",\"request\":{\"language\":\"python\",\"cpu\":\"one\"},\"outcomes\":{}}", "malformed request line at $.request.cpu")]
    [InlineData(2, "{\"type\":\"request\",\"seq\":2,\"time\":\"2026-11-28T10:00:00Z\",\"request\":{\"language\":\"python\",\"cpu\":0},\"outcomes\":{}}", "request.cpu must be > 0")]
    [InlineData(2, "{\"type\":\"request\",\"seq\":2,\"time\":\"2026-11-28T10:00:00Z\",\"request\":{\"language\":\"python\"},\"outcomes\":{\"modal/gvisor/us-east\":{\"ok\":true,\"latencyMs\":1,\"costUsd\":0}}}", "names no candidate of the market")]
    [InlineData(2, "{\"type\":\"price\",\"time\":\"2026-11-28T10:00:00Z\",\"provider\":\"nobody\",\"price\":{}}", "price.provider \"nobody\" is not in the market")]
    [InlineData(2, "{not json", "not valid JSON")]
    [InlineData(2, "{\"type\":\"surprise\"}", "unknown type \"surprise\"")]
    public void Parse_MalformedLine_ThrowsNamingTheLine(int line, string bad, string expected)
    {
        var text = line == 1 ? bad : Market + "\n" + bad;
        var e = Assert.Throws<TraceFormatException>(() => TraceSerializer.Parse(text));

        Assert.Equal(line, e.Line);
        Assert.StartsWith($"trace line {line}: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WriteThenRead_GeneratedTrace_RoundTrips()
    {
        var trace = MarketSimulator.Generate(new MarketSettings { Requests = 200, Days = 1, Seed = 3 });
        using var writer = new StringWriter();
        await TraceSerializer.WriteAsync(trace, writer, CancellationToken.None);
        var back = TraceSerializer.Parse(writer.ToString());

        Assert.Equal(trace.Providers.Count, back.Providers.Count);
        Assert.Equal(trace.Events.Count, back.Events.Count);
        var a = trace.Events.OfType<TraceRequestEvent>().Last();
        var b = back.Events.OfType<TraceRequestEvent>().Last();
        Assert.Equal(a.Request, b.Request);
        Assert.Equal(a.Outcomes.Keys.Order(), b.Outcomes.Keys.Order());
    }

    [Fact]
    public async Task Replay_ShortDefaultMarket_RouterCostsLessThanCheapestListPrice()
    {
        var trace = MarketSimulator.Generate(new MarketSettings { Requests = 1500, Days = 1.5, Seed = 11 });
        var settings = new BenchmarkSettings { DecisionSamples = 50, Adaptation = false, Routing = new RoutingOptions { ExplorationRate = 0.03, Trainer = new() { Iterations = 80 } } };

        var result = await RoutingBenchmark.RunAsync(trace, settings, CancellationToken.None);

        var cost = result.Strategies.Single(s => s.Strategy == RoutingStrategy.OptimizeCost);
        Assert.True(result.Promotions > 0);
        Assert.True(cost.Router.TotalCost < cost.CheapestListPrice.TotalCost, $"router {cost.Router.TotalCost} vs cheapest list price {cost.CheapestListPrice.TotalCost}");
        Assert.True(cost.Oracle.TotalCost <= cost.Router.TotalCost);
        Assert.Contains("\"optimize_cost\":{\"router\":{", RoutingBenchmark.ToJson(result), StringComparison.Ordinal);

        // Manual routing: every fixed provider × runtime × region of the market, best in hindsight among those that serve all.
        var fixedCandidates = trace.Providers.Sum(p => p.Regions.Count);
        Assert.Equal(fixedCandidates, cost.Manual.Count);
        Assert.Contains(cost.Manual, m => m.Name == "manual edge/runsc/ap-south");
        Assert.Contains(cost.Manual, m => m.Name == "manual daytona/container/eu-west" && !m.ServesAll);
        Assert.Equal(cost.Manual.Where(m => m.ServesAll).Min(m => m.TotalCost), cost.BestManual.TotalCost);
        var latency = result.Strategies.Single(s => s.Strategy == RoutingStrategy.OptimizeLatency);
        Assert.Equal(latency.Manual.Where(m => m.ServesAll).Min(m => m.MeanLatencyMs), latency.BestManual.MeanLatencyMs);
        Assert.Equal(result.Regret.Count(r => r.Strategy == RoutingStrategy.OptimizeCost), cost.Router.Requests);
    }

    [Fact]
    public void ToJson_Result_HasExactlyTheDocumentedShape()
    {
        var p = new PolicyResult("x", 1, 0.5, 10, 9, 12, 1, 2, true);
        var s = new StrategyResult(RoutingStrategy.OptimizeCost, p, p, p, p, p, [p]);
        var result = new BenchmarkResult(1, 0, 0, null, [s, s with { Strategy = RoutingStrategy.OptimizeLatency }], 42.04, 50, TimeSpan.Zero);

        var json = System.Text.Json.Nodes.JsonNode.Parse(RoutingBenchmark.ToJson(result))!.AsObject();

        Assert.Equal(["optimize_cost", "optimize_latency", "decisionLatencyUsP50", "decisionLatencyUsP99", "unplaced", "unplacedAvoidable", "adaptation"], json.Select(kv => kv.Key));
        Assert.Equal(["router", "bestManual", "cheapestListPrice", "roundRobin", "oracle", "e2bOnly"], json["optimize_cost"]!.AsObject().Select(kv => kv.Key));
        var router = json["optimize_latency"]!["router"]!.AsObject();
        Assert.Superset(new HashSet<string> { "totalCost", "meanLatencyMs", "p50LatencyMs", "p95LatencyMs", "failures", "violations" }, router.Select(kv => kv.Key).Where(k => k != "name").ToHashSet());
        Assert.Equal(6, router.Count(kv => kv.Key != "name"));
        Assert.Equal(42.0, json["decisionLatencyUsP50"]!.GetValue<double>());
    }

    [Fact]
    public async Task AdaptAsync_ProviderTurnsTwiceAsSlowMidReplay_LosesItsTrafficWithinAFewHundredRequests()
    {
        var trace = MarketSimulator.Generate(new MarketSettings { Requests = 3000, Days = 1.5, Seed = 5 });
        var settings = new BenchmarkSettings { DecisionSamples = 20, Adaptation = false, Routing = new RoutingOptions { ExplorationRate = 0.03, Trainer = new() { Iterations = 60 } } };
        var plain = await RoutingBenchmark.ReplayAsync(trace, settings, CancellationToken.None);

        var slower = await RoutingBenchmark.AdaptAsync(trace, plain, settings, RoutingStrategy.OptimizeLatency, CancellationToken.None);

        Assert.NotNull(slower);
        Assert.True(slower.ShareBefore > 0.2, $"{slower.Target} had {slower.ShareBefore:P0}");
        Assert.InRange(slower.RequestsUntilMoved ?? int.MaxValue, 1, 500);
        Assert.True(slower.ShareAfter < slower.ShareBefore / 2);
    }

    [Fact]
    public async Task ReplayAsync_PreferredRegionIsSoft_RouterPlacesEveryRequestAHardConstraintAllows()
    {
        var trace = MarketSimulator.Generate(new MarketSettings { Requests = 800, Days = 0.5, Seed = 8, CallerRegionShare = 0.8, ResidencyShare = 0.4 });
        var requests = trace.Events.OfType<TraceRequestEvent>().ToList();

        var result = await RoutingBenchmark.ReplayAsync(trace, new BenchmarkSettings { DecisionSamples = 10, Adaptation = false }, CancellationToken.None);

        // Outcomes exist outside the preferred region; residency is honoured by every placement.
        Assert.Contains(requests, r => r.Request.Constraints?.PreferredRegion is { } home && r.Outcomes.Keys.Any(k => !k.EndsWith(home, StringComparison.Ordinal)));
        for (var i = 0; i < requests.Count; i++)
        {
            if (requests[i].Request.Constraints?.AllowedRegions is { } allowed && result.RouterKeys[i] is { } key)
            {
                Assert.True(Regions.RegionCatalog.Default.Allows(allowed, key[(key.LastIndexOf('/') + 1)..]), $"{key} outside [{string.Join(",", allowed)}]");
            }
        }

        Assert.Equal(0, result.UnplacedAvoidable);
    }
}
