using Sandstorm.Core.Contracts;
using Sandstorm.Routing.Learning;

namespace Sandstorm.Routing.Tests;

/// <summary>Small markets and synthetic ledgers for the tests.</summary>
internal static class TestMarket
{
    public static readonly DateTimeOffset Now = new(2026, 11, 28, 10, 0, 0, TimeSpan.Zero);

    /// <summary>"cheap" is cheap and slow, "fast" is dear and quick; both in two regions, standard isolation.</summary>
    public static IReadOnlyList<ProviderCapabilities> TwoProviders() =>
    [
        Provider("cheap", "bwrap", IsolationLevel.Standard, 0.000005, ["us-east", "eu-west"]),
        Provider("fast", "firecracker", IsolationLevel.Standard, 0.00003, ["us-east", "eu-west"]),
    ];

    public static ProviderCapabilities Provider(string id, string runtime, IsolationLevel level, double vcpuSecond, IReadOnlyList<string> regions) => new()
    {
        Provider = id,
        Runtimes = [new RuntimeOffer(runtime, level)],
        Regions = regions,
        Languages = Languages.Supported,
        Price = new PriceSheet { VcpuSecond = vcpuSecond, GibSecond = 0.000001, GranularitySeconds = 1 },
    };

    public static Workload Workload(RoutingStrategy strategy = RoutingStrategy.OptimizeCost, RunConstraints? constraints = null) => new()
    {
        Language = Languages.Python,
        CodeLength = 800,
        Cpu = 1,
        MemoryMiB = 512,
        TimeoutMs = 60_000,
        Strategy = strategy,
        Constraints = constraints,
    };

    public static RoutingContext Context(Workload workload, IReadOnlyList<ProviderCapabilities>? providers = null) =>
        new("run-1", "tenant", workload, providers ?? TwoProviders(), new Dictionary<string, ProviderHealth>(), Now);

    /// <summary>A ledger where "cheap" runs take ~20 s and "fast" ~4 s, whatever the region.</summary>
    public static List<RoutingObservation> Ledger(int count, int seed = 1)
    {
        var rng = new Random(seed);
        var providers = TwoProviders();
        var list = new List<RoutingObservation>(count);
        for (var i = 0; i < count; i++)
        {
            var p = providers[i % 2];
            var region = p.Regions[rng.Next(2)];
            var w = Workload(i % 3 == 0 ? RoutingStrategy.OptimizeLatency : RoutingStrategy.OptimizeCost) with { CodeLength = 200 + rng.Next(3000) };
            var seconds = (p.Provider == "cheap" ? 20 : 4) * Math.Exp(0.1 * ((rng.NextDouble() * 2) - 1));
            list.Add(new RoutingObservation
            {
                RunId = $"r{i}",
                Time = Now.AddMinutes(-count + i),
                Workload = w,
                Route = new RouteCandidate(p.Provider, p.Runtimes[0].Name, region),
                Price = p.Price,
                CostUsd = (double)p.Price.CostFor(w.Cpu, w.MemoryMiB, seconds),
                LatencyMs = seconds * 1000,
                Ok = true,
            });
        }

        return list;
    }

    public static RoutingModel TrainedModel(int count = 400)
    {
        var ledger = Ledger(count);
        var trainer = new RoutingModelTrainer(new TrainerSettings { Iterations = 60 });
        return trainer.Train(ledger[..(count * 4 / 5)], ledger[(count * 4 / 5)..], Now.AddDays(-1), Now, Now);
    }
}
