using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sandstorm.Core.Contracts;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Reoptimization;
using Sandstorm.Routing.Storage;

namespace Sandstorm.Routing.Simulation;

/// <summary>Settings of a replay.</summary>
public sealed record BenchmarkSettings
{
    /// <summary>Retrain at least this often in trace time (the scheduled job).</summary>
    public TimeSpan RetrainEvery { get; init; } = TimeSpan.FromHours(6);

    /// <summary>Exploration seed (the replay is deterministic for a trace and a seed).</summary>
    public int Seed { get; init; } = 7;

    public RoutingOptions Routing { get; init; } = new() { ExplorationRate = 0.03 };

    /// <summary>Decisions timed for the decision-latency figure (8 candidates each).</summary>
    public int DecisionSamples { get; init; } = 2000;
}

/// <summary>Totals of one policy over one strategy's requests.</summary>
public sealed record PolicyResult(string Name, int Requests, double TotalCost, double MeanLatencyMs, double P50LatencyMs, double P95LatencyMs, int Failures, int Violations, bool ServesAll)
{
    public JsonObject ToJson() => new()
    {
        ["name"] = Name,
        ["totalCost"] = Math.Round(TotalCost, 6),
        ["meanLatencyMs"] = Math.Round(MeanLatencyMs, 1),
        ["p50LatencyMs"] = Math.Round(P50LatencyMs, 1),
        ["p95LatencyMs"] = Math.Round(P95LatencyMs, 1),
        ["failures"] = Failures,
        ["violations"] = Violations,
    };
}

/// <summary>All policies on one strategy's requests; best manual chosen in hindsight for that strategy's metric.</summary>
public sealed record StrategyResult(
    RoutingStrategy Strategy, PolicyResult Router, PolicyResult BestManual, PolicyResult CheapestListPrice, PolicyResult RoundRobin, PolicyResult Oracle, IReadOnlyList<PolicyResult> Manual);

/// <summary>What a replay measured.</summary>
public sealed record BenchmarkResult(
    int Requests, int Retrains, int Promotions, string? FinalModel, IReadOnlyList<StrategyResult> Strategies, double DecisionLatencyUsP50, double ReplayDecisionUsP50, TimeSpan Elapsed)
{
    /// <summary>Router against oracle, request by request (the regret breakdown of the text report).</summary>
    public IReadOnlyList<RegretRow> Regret { get; init; } = [];
}

/// <summary>
/// One request as the router and the oracle ran it: the size bucket (by timeout), whether any candidate the request could use
/// was in an outage, where each ran and what it cost / took (null = refused or nothing available).
/// </summary>
public sealed record RegretRow(RoutingStrategy Strategy, string Bucket, bool Outage, string? RouterKey, TraceOutcome? Router, string? OracleKey, TraceOutcome? Oracle);

/// <summary>
/// Replays a market trace in order against the ML router and the baselines. The router sees only the outcome of the candidate
/// it ran (as the ledger does), keeps provider health from those, and is retrained by the <see cref="ReoptimizationJob"/> on
/// the schedule: every <see cref="BenchmarkSettings.RetrainEvery"/> of trace time, and sooner while its data doubles.
/// </summary>
public static class RoutingBenchmark
{
    private const string RouterName = "router (lightgbm)";

    public static async Task<BenchmarkResult> RunAsync(MarketTrace trace, BenchmarkSettings settings, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var providers = MarketTrace.Capabilities(trace.Providers).ToList();
        var requests = trace.Events.OfType<TraceRequestEvent>().ToList();
        var time = new ReplayClock(requests.Count > 0 ? requests[0].Time : DateTimeOffset.UnixEpoch);
        var observations = new InMemoryObservationSource();
        var store = new InMemoryModelStore();
        var options = settings.Routing;
        var holder = new RoutingModelHolder(store, new RoutingCalibration(options));
        var router = new LightGbmRouter(holder, options, new SeededExplorationRandom(settings.Seed));
        var job = new ReoptimizationJob(observations, store, holder, new RoutingMarketState(), options, time);
        var rule = new RuleBasedRouter();
        var health = new HealthTracker();

        // Every fixed candidate a team could hard-code: provider × runtime × home region.
        var manualKeys = trace.Providers
            .SelectMany(p => p.Regions.Select(region => (p.Id, p.Runtime, Region: region)))
            .Distinct()
            .ToList();
        var tallies = new Dictionary<RoutingStrategy, Dictionary<string, Tally>>();
        var decisionTimes = new List<double>(requests.Count);
        var regret = new List<RegretRow>(requests.Count);
        var roundRobin = 0;
        var retrains = 0;
        var promotions = 0;
        var lastTrain = DateTimeOffset.MinValue;
        var trainedAt = 0;

        foreach (var e in trace.Events)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (e is TracePriceEvent price)
            {
                var i = providers.FindIndex(p => p.Provider == price.Provider);
                providers[i] = providers[i] with { Price = price.Price };
                continue;
            }

            var r = (TraceRequestEvent)e;
            time.Now = r.Time;
            var due = r.Time - lastTrain >= settings.RetrainEvery || observations.Count >= Math.Max(options.MinTrainingObservations, 2 * trainedAt);
            if (due && observations.Count >= options.MinTrainingObservations)
            {
                var report = await job.RunAsync(cancellationToken);
                retrains++;
                promotions += report.Promoted ? 1 : 0;
                lastTrain = r.Time;
                trainedAt = observations.Count;
            }

            var w = r.Request.ToWorkload();
            var context = new RoutingContext($"run-{r.Seq}", "bench", w, providers, health.Snapshot(providers, r.Outcomes, r.Time), r.Time);
            var t = tallies.TryGetValue(w.Strategy, out var found) ? found : tallies[w.Strategy] = new Dictionary<string, Tally>(StringComparer.Ordinal);

            // (a) the ML router: fails over along its candidate list past unavailable ones; learns from what ran.
            var started = Stopwatch.GetTimestamp();
            RouteDecision? decision = null;
            try
            {
                decision = router.Decide(context, holder.Current);
            }
            catch (NoCandidateException)
            {
                // Refused up front: no money spent, the caller's constraint not met.
            }

            decisionTimes.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
            var ran = decision?.Candidates.FirstOrDefault(c => c.Rejected is null && r.Outcomes.ContainsKey(c.Key));
            var tally = Get(t, RouterName);
            TraceOutcome? routerOutcome = ran is null ? null : r.Outcomes[ran.Key];
            if (ran is null)
            {
                tally.Refuse();
            }
            else
            {
                var outcome = r.Outcomes[ran.Key];
                tally.Add(outcome, w);
                router.Observe(ran, r.Time, outcome.CostUsd, outcome.LatencyMs, outcome.Ok);
                health.Record(ran.Provider, ran.Region, outcome, r.Time);
                var offer = providers.First(p => p.Provider == ran.Provider);
                observations.Add(new RoutingObservation
                {
                    RunId = context.RunId,
                    Time = r.Time,
                    Workload = w,
                    Route = new RouteCandidate(ran.Provider, ran.Runtime, ran.Region),
                    RuntimeIsolation = w.IsolationLevel,
                    Price = offer.Price,
                    Health = CandidateEnumerator.HealthOf(context.Health, ran.Provider, ran.Region),
                    CostUsd = outcome.CostUsd,
                    LatencyMs = outcome.LatencyMs,
                    Ok = outcome.Ok,
                });
            }

            // Feasible set for the baselines (same enumerator, same availability).
            List<Candidate> feasible;
            var outage = false;
            try
            {
                var (f, rejected) = CandidateEnumerator.Enumerate(context);
                feasible = f;
                outage = rejected.Any(c => c.Rejected!.StartsWith("provider unavailable", StringComparison.Ordinal));
            }
            catch (NoCandidateException)
            {
                feasible = [];
                outage = true;
            }

            // (b) manual: one hard-coded candidate; a run pinned to another region goes to the same provider there (the
            // endpoint a team would configure per region). No failover: when that endpoint is down, the run fails.
            foreach (var (id, runtime, home) in manualKeys)
            {
                var name = $"manual {id}/{runtime}/{home}";
                var offer = providers.First(p => p.Provider == id);
                var region = w.Constraints?.PreferredRegion ?? home;
                var serves = offer.Runtimes.Any(o => o.Name == runtime && o.Isolation == w.IsolationLevel) && offer.Regions.Contains(region) && offer.Languages.Contains(w.Language);
                var m = Get(t, name);
                if (!serves)
                {
                    m.CannotServe();
                }
                else if (r.Outcomes.TryGetValue($"{id}/{runtime}/{region}", out var o))
                {
                    m.Add(o, w);
                }
                else
                {
                    m.Unavailable();
                }
            }

            // (c) cheapest list price (the rule-based router), (d) round robin, (e) the per-request oracle.
            Run(Get(t, "cheapest list price"), feasible.Count == 0 ? null : (await rule.RouteAsync(context, cancellationToken)).Candidates, r, w);
            Run(Get(t, "round robin"), feasible.Count == 0 ? null : [feasible[roundRobin++ % feasible.Count].Route], r, w);
            var (oracleKey, oracleOutcome) = Oracle(Get(t, "oracle"), feasible, r, w);

            regret.Add(new RegretRow(w.Strategy, Bucket(w), outage, ran?.Key, routerOutcome, oracleKey, oracleOutcome));
        }

        var strategies = tallies.OrderBy(kv => kv.Key).Select(kv => Summarise(kv.Key, kv.Value)).ToList();
        var decisionUs = MeasureDecisions(router, holder.Current, providers, settings.DecisionSamples);
        return new BenchmarkResult(
            requests.Count, retrains, promotions, holder.Current?.Metadata.Version, strategies, decisionUs,
            Percentile(decisionTimes, 0.5), clock.Elapsed)
        {
            Regret = regret,
        };
    }

    /// <summary>Size bucket of a run by its timeout: the simulator's snippets, analyses and batch jobs, or any trace's short/medium/long runs.</summary>
    public static string Bucket(Workload w) => w.TimeoutMs switch
    {
        <= 60_000 => "short (≤ 60 s timeout)",
        <= 300_000 => "medium (≤ 5 min)",
        _ => "long (> 5 min)",
    };

    /// <summary>p50 of deciding among exactly 8 candidates (strong isolation, no region: e2b×2, modal×3, edge×3 in the default market).</summary>
    private static double MeasureDecisions(LightGbmRouter router, RoutingModel? model, IReadOnlyList<ProviderCapabilities> providers, int samples)
    {
        var workload = new Workload { Language = Languages.Python, CodeLength = 900, Requirements = 2, Cpu = 1, MemoryMiB = 512, TimeoutMs = 60_000, IsolationLevel = IsolationLevel.Strong, Strategy = RoutingStrategy.OptimizeCost };
        var context = new RoutingContext("decide", "bench", workload, providers, new Dictionary<string, ProviderHealth>(), DateTimeOffset.UnixEpoch);
        var times = new List<double>(samples);
        for (var i = 0; i < samples + 100; i++)
        {
            var started = Stopwatch.GetTimestamp();
            router.Decide(context, model);
            if (i >= 100)
            {
                times.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
            }
        }

        return Percentile(times, 0.5);
    }

    private static void Run(Tally tally, IReadOnlyList<RouteCandidate>? candidates, TraceRequestEvent r, Workload w)
    {
        var ran = candidates?.FirstOrDefault(c => c.Rejected is null && r.Outcomes.ContainsKey(c.Key));
        if (ran is null)
        {
            tally.Unavailable();
        }
        else
        {
            tally.Add(r.Outcomes[ran.Key], w);
        }
    }

    /// <summary>Knows every outcome: the best successful run within the constraints for the strategy, else the best successful, else any.</summary>
    private static (string? Key, TraceOutcome? Outcome) Oracle(Tally tally, List<Candidate> feasible, TraceRequestEvent r, Workload w)
    {
        var options = feasible.Where(c => r.Outcomes.ContainsKey(c.Route.Key)).Select(c => (c.Route.Key, Outcome: r.Outcomes[c.Route.Key])).ToList();
        if (options.Count == 0)
        {
            tally.Unavailable();
            return (null, null);
        }

        Func<TraceOutcome, double> metric = w.Strategy switch
        {
            RoutingStrategy.OptimizeCost => o => o.CostUsd,
            RoutingStrategy.OptimizeLatency => o => o.LatencyMs,
            _ => o => (o.CostUsd / options.Min(x => Math.Max(x.Outcome.CostUsd, 1e-12))) + (o.LatencyMs / options.Min(x => Math.Max(x.Outcome.LatencyMs, 1e-9))),
        };
        var pool = options.Where(o => o.Outcome.Ok && !Violates(o.Outcome, w)).ToList();
        if (pool.Count == 0)
        {
            pool = options.Where(o => o.Outcome.Ok).ToList();
        }

        var best = (pool.Count > 0 ? pool : options).MinBy(o => metric(o.Outcome));
        tally.Add(best.Outcome, w);
        return best;
    }

    internal static bool Violates(TraceOutcome o, Workload w) =>
        (w.Constraints?.MaxCost is { } mc && o.CostUsd > (double)mc) || (w.Constraints?.MaxLatency is { } ml && o.LatencyMs > ml);

    private static StrategyResult Summarise(RoutingStrategy strategy, Dictionary<string, Tally> tallies)
    {
        var results = tallies.ToDictionary(kv => kv.Key, kv => kv.Value.Result(kv.Key));
        var manual = results.Values.Where(p => p.Name.StartsWith("manual ", StringComparison.Ordinal)).OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        var eligible = manual.Where(m => m.ServesAll).ToList();
        if (eligible.Count == 0)
        {
            eligible = manual;
        }

        // Best in hindsight on the strategy's own metric, among the candidates that can serve every request of the strategy.
        var best = strategy == RoutingStrategy.OptimizeLatency
            ? eligible.MinBy(m => m.MeanLatencyMs)!
            : eligible.MinBy(m => m.TotalCost)!;

        return new StrategyResult(strategy, results[RouterName], best, results["cheapest list price"], results["round robin"], results["oracle"], manual);
    }

    /// <summary>The figures as one JSON object (see the bench command's --json).</summary>
    public static string ToJson(BenchmarkResult result)
    {
        var root = new JsonObject();
        foreach (var s in result.Strategies)
        {
            root[Wire(s.Strategy)] = new JsonObject
            {
                ["router"] = s.Router.ToJson(),
                ["bestManual"] = s.BestManual.ToJson(),
                ["cheapestListPrice"] = s.CheapestListPrice.ToJson(),
                ["roundRobin"] = s.RoundRobin.ToJson(),
                ["oracle"] = s.Oracle.ToJson(),
            };
        }

        root["decisionLatencyUsP50"] = Math.Round(result.DecisionLatencyUsP50, 1);
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
    }

    /// <summary>The figures as a table with ratios and targets.</summary>
    public static string Format(BenchmarkResult result)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"routing benchmark: {result.Requests} requests, {result.Retrains} retrains ({result.Promotions} promoted), final model {result.FinalModel ?? "none"}, replay took {result.Elapsed.TotalSeconds:0.0} s");
        foreach (var s in result.Strategies)
        {
            sb.AppendLine();
            sb.AppendLine(inv, $"== {Wire(s.Strategy)} ({s.Router.Requests} requests) ==");
            sb.AppendLine(inv, $"{"policy",-50} {"total cost $",12} {"mean ms",9} {"p50 ms",9} {"p95 ms",9} {"fail",5} {"viol",5} {"cost/manual",11} {"cost/oracle",11} {"lat/manual",10} {"lat/oracle",10}");
            void Row(PolicyResult p, string label) => sb.AppendLine(inv,
                $"{label,-50} {p.TotalCost,12:0.000000} {p.MeanLatencyMs,9:0} {p.P50LatencyMs,9:0} {p.P95LatencyMs,9:0} {p.Failures,5} {p.Violations,5} {Ratio(p.TotalCost, s.BestManual.TotalCost),11} {Ratio(p.TotalCost, s.Oracle.TotalCost),11} {Ratio(p.MeanLatencyMs, s.BestManual.MeanLatencyMs),10} {Ratio(p.MeanLatencyMs, s.Oracle.MeanLatencyMs),10}");
            Row(s.Router, s.Router.Name);
            Row(s.BestManual, $"best manual = {s.BestManual.Name[7..]}");
            Row(s.CheapestListPrice, s.CheapestListPrice.Name);
            Row(s.RoundRobin, s.RoundRobin.Name);
            Row(s.Oracle, s.Oracle.Name);
            foreach (var m in s.Manual)
            {
                Row(m, m.ServesAll ? m.Name : $"{m.Name} (cannot serve all)");
            }

            var noWorse = s.Router.Failures <= s.BestManual.Failures && s.Router.Violations <= s.BestManual.Violations;
            if (s.Strategy == RoutingStrategy.OptimizeCost)
            {
                var vsManual = s.Router.TotalCost / s.BestManual.TotalCost;
                var vsOracle = s.Router.TotalCost / s.Oracle.TotalCost;
                sb.AppendLine(inv, $"targets: cost ≤ 0.6 × best manual: {vsManual:0.000} {Mark(vsManual <= 0.6)}; within 10% of oracle: {vsOracle:0.000} {Mark(vsOracle <= 1.1)}; failures+violations ≤ best manual's ({s.Router.Failures}+{s.Router.Violations} vs {s.BestManual.Failures}+{s.BestManual.Violations}) {Mark(noWorse)}");
            }
            else if (s.Strategy == RoutingStrategy.OptimizeLatency)
            {
                var vsOracle = s.Router.MeanLatencyMs / s.Oracle.MeanLatencyMs;
                var ceiling = 1 - (s.Oracle.MeanLatencyMs / s.BestManual.MeanLatencyMs);
                var taken = 1 - (s.Router.MeanLatencyMs / s.BestManual.MeanLatencyMs);
                sb.AppendLine(inv, $"targets: mean latency within 10% of oracle: {vsOracle:0.000} {Mark(vsOracle <= 1.1)}; failures+violations ≤ best manual's ({s.Router.Failures}+{s.Router.Violations} vs {s.BestManual.Failures}+{s.BestManual.Violations}) {Mark(noWorse)}");
                sb.AppendLine(inv, $"\"60% faster than manual routing\": this market allows at most {ceiling:P1} faster (oracle vs best manual); the router is {taken:P1} faster");
            }
        }

        AppendRegret(sb, result.Regret);
        sb.AppendLine();
        sb.AppendLine(inv, $"decision latency: p50 {result.DecisionLatencyUsP50:0.0} µs to score 8 candidates (target ≤ 200 µs) {Mark(result.DecisionLatencyUsP50 <= 200)}; p50 over the replay {result.ReplayDecisionUsP50:0.0} µs");
        return sb.ToString();
    }

    /// <summary>
    /// Where the router loses to the oracle, on the strategy's own metric (cost for optimize_cost, latency for optimize_latency):
    /// by size bucket, by outage, by quarter of the trace (the cost of learning), and by the (router's, oracle's) provider pair
    /// with the largest regret.
    /// </summary>
    private static void AppendRegret(StringBuilder sb, IReadOnlyList<RegretRow> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        foreach (var strategy in rows.Select(r => r.Strategy).Distinct().Order())
        {
            Func<TraceOutcome, double> metric = strategy == RoutingStrategy.OptimizeLatency ? o => o.LatencyMs : o => o.CostUsd;
            var both = rows.Where(r => r.Strategy == strategy && r.Router is not null && r.Oracle is not null).ToList();
            var total = both.Sum(r => metric(r.Router!) - metric(r.Oracle!));
            sb.AppendLine();
            sb.AppendLine(inv, $"-- regret vs oracle, {Wire(strategy)} ({(strategy == RoutingStrategy.OptimizeLatency ? "latency ms" : "cost $")}; requests both ran) --");
            void Group(string label, IEnumerable<RegretRow> group)
            {
                var g = group.ToList();
                var router = g.Sum(r => metric(r.Router!));
                var oracle = g.Sum(r => metric(r.Oracle!));
                var failed = g.Count(r => !r.Router!.Ok);
                sb.AppendLine(inv, $"{label,-44} {g.Count,6} {router,14:0.######} {oracle,14:0.######} {Ratio(router, oracle),7} {(total > 0 ? (router - oracle) / total : 0),8:P1} {failed,6}");
            }

            sb.AppendLine(inv, $"{"group",-44} {"n",6} {"router",14} {"oracle",14} {"ratio",7} {"regret",8} {"fail",6}");
            foreach (var bucket in both.GroupBy(r => r.Bucket).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                Group(bucket.Key, bucket);
            }

            Group("during an outage of some candidate", both.Where(r => r.Outage));

            // In trace order: how much of the regret is the router still learning.
            for (var q = 0; q < 4; q++)
            {
                Group($"quarter {q + 1} of the trace", both.Skip(q * both.Count / 4).Take(((q + 1) * both.Count / 4) - (q * both.Count / 4)));
            }

            foreach (var pair in both
                .GroupBy(r => $"{Provider(r.RouterKey)} → {Provider(r.OracleKey)} [{r.Bucket[..r.Bucket.IndexOf(' ', StringComparison.Ordinal)]}]")
                .OrderByDescending(g => g.Sum(r => metric(r.Router!) - metric(r.Oracle!)))
                .Take(6))
            {
                Group($"router {pair.Key}", pair);
            }
        }

        static string Provider(string? key) => key is null ? "-" : key[..key.IndexOf('/', StringComparison.Ordinal)] + key[key.LastIndexOf('/')..];
    }

    private static string Mark(bool ok) => ok ? "OK" : "MISSED";

    private static string Ratio(double a, double b) => b > 0 ? (a / b).ToString("0.000", CultureInfo.InvariantCulture) : "-";

    private static string Wire(RoutingStrategy s) => s switch
    {
        RoutingStrategy.OptimizeCost => "optimize_cost",
        RoutingStrategy.OptimizeLatency => "optimize_latency",
        _ => "balanced",
    };

    private static Tally Get(Dictionary<string, Tally> t, string name) => t.TryGetValue(name, out var x) ? x : t[name] = new Tally();

    internal static double Percentile(List<double> values, double q)
    {
        if (values.Count == 0)
        {
            return 0;
        }

        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Floor(q * sorted.Count))];
    }

    private sealed class Tally
    {
        private readonly List<double> _latencies = [];
        private double _cost;
        private int _failures;
        private int _violations;
        private int _requests;
        private bool _cannotServe;

        public void Add(TraceOutcome o, Workload w)
        {
            _requests++;
            _cost += o.CostUsd;
            _latencies.Add(o.LatencyMs);
            if (!o.Ok)
            {
                _failures++;
            }
            else if (Violates(o, w))
            {
                _violations++;
            }
        }

        /// <summary>The chosen place was down and there was no fallback: a failed run, nothing paid.</summary>
        public void Unavailable()
        {
            _requests++;
            _failures++;
        }

        /// <summary>Refused before running: the caller's constraint was not met, nothing paid.</summary>
        public void Refuse()
        {
            _requests++;
            _violations++;
        }

        public void CannotServe()
        {
            _requests++;
            _cannotServe = true;
        }

        public PolicyResult Result(string name) => new(
            name, _requests, _cost, _latencies.Count == 0 ? 0 : _latencies.Average(), Percentile(_latencies, 0.5), Percentile(_latencies, 0.95), _failures, _violations, !_cannotServe);
    }

    /// <summary>Trace time for the job's clock.</summary>
    private sealed class ReplayClock(DateTimeOffset start) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = start;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
