using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sandstorm.Core.Contracts;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Regions;
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

    /// <summary>Also replay the two adaptation scenarios (a provider's latency doubles; a price-sheet price doubles).</summary>
    public bool Adaptation { get; init; } = true;

    /// <summary>Where in the trace (fraction of its requests) the scenarios shift the market.</summary>
    public double ShiftAt { get; init; } = 0.6;
}

/// <summary>How fast the router moved traffic away after a shift in the market (<see cref="RoutingBenchmark.AdaptAsync"/>).</summary>
public sealed record AdaptationResult(
    string Scenario, string Target, RoutingStrategy Strategy, int ShiftAtRequest, double ShareBefore, double ShareAfter, int? RequestsUntilMoved, int? RunsOnTargetUntilMoved);

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

/// <summary>All policies on one strategy's requests; best manual and E2B's best region chosen in hindsight for that strategy's metric.</summary>
public sealed record StrategyResult(
    RoutingStrategy Strategy, PolicyResult Router, PolicyResult BestManual, PolicyResult CheapestListPrice, PolicyResult RoundRobin, PolicyResult Oracle, IReadOnlyList<PolicyResult> Manual)
{
    /// <summary>"E2B only": every request to E2B's best single region (null when the market has no E2B).</summary>
    public PolicyResult? E2BOnly { get; init; }
}

/// <summary>What a replay measured.</summary>
public sealed record BenchmarkResult(
    int Requests, int Retrains, int Promotions, string? FinalModel, IReadOnlyList<StrategyResult> Strategies, double DecisionLatencyUsP50, double ReplayDecisionUsP50, TimeSpan Elapsed)
{
    /// <summary>Router against oracle, request by request (the regret breakdown of the text report).</summary>
    public IReadOnlyList<RegretRow> Regret { get; init; } = [];

    public double DecisionLatencyUsP99 { get; init; }

    public double ReplayDecisionUsP99 { get; init; }

    /// <summary>Requests the router placed nowhere (refused, or every candidate it listed was down).</summary>
    public int Unplaced { get; init; }

    /// <summary>Of those, requests where some available candidate succeeded within every constraint (the oracle placed them).</summary>
    public int UnplacedAvoidable { get; init; }

    /// <summary>Requests no candidate could serve within the hard constraints (isolation, allowed regions, availability).</summary>
    public int NoFeasibleCandidate { get; init; }

    /// <summary>The router's provider/runtime/region per request, in trace order (null = unplaced).</summary>
    public IReadOnlyList<string?> RouterKeys { get; init; } = [];

    public IReadOnlyList<AdaptationResult> Adaptation { get; init; } = [];
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

    /// <summary>The replay, then (with <see cref="BenchmarkSettings.Adaptation"/>) the two adaptation scenarios.</summary>
    public static async Task<BenchmarkResult> RunAsync(MarketTrace trace, BenchmarkSettings settings, CancellationToken cancellationToken)
    {
        var result = await ReplayAsync(trace, settings, cancellationToken);
        if (!settings.Adaptation)
        {
            return result;
        }

        var slower = await AdaptAsync(trace, result, settings, RoutingStrategy.OptimizeLatency, cancellationToken);
        var dearer = await AdaptAsync(trace, result, settings, RoutingStrategy.OptimizeCost, cancellationToken);
        return result with { Adaptation = [.. slower is null ? [] : new[] { slower }, .. dearer is null ? [] : new[] { dearer }] };
    }

    /// <summary>
    /// One adaptation scenario on a copy of the trace: the provider with the largest share of <paramref name="strategy"/>'s runs
    /// in the plain replay becomes twice as slow (latency scenario: every outcome on it from the shift on takes twice as long,
    /// and costs twice as much where billing follows time) or twice as dear (price scenario: a price-sheet line doubles its
    /// list price and every outcome's cost). Reports how many requests after the shift it took until the provider's share of
    /// that strategy's runs, over a window of 50 requests it could serve, fell to half its share before the shift.
    /// </summary>
    public static async Task<AdaptationResult?> AdaptAsync(MarketTrace trace, BenchmarkResult plain, BenchmarkSettings settings, RoutingStrategy strategy, CancellationToken cancellationToken)
    {
        var requests = trace.Events.OfType<TraceRequestEvent>().ToList();
        var shiftIndex = (int)(requests.Count * settings.ShiftAt);
        if (shiftIndex < 500 || plain.RouterKeys.Count != requests.Count)
        {
            return null;
        }

        // The target: the provider the router used most for this strategy in the quarter before the shift.
        var target = Enumerable.Range(shiftIndex - (requests.Count / 4), requests.Count / 4)
            .Where(i => requests[i].Request.Strategy == strategy && plain.RouterKeys[i] is not null)
            .GroupBy(i => plain.RouterKeys[i]![..plain.RouterKeys[i]!.IndexOf('/', StringComparison.Ordinal)], StringComparer.Ordinal)
            .OrderByDescending(g => g.Count())
            .Select(g => g.Key)
            .FirstOrDefault();
        if (target is null)
        {
            return null;
        }

        var at = requests[shiftIndex].Time;
        var prefix = target + "/";
        var events = new List<TraceEvent>(trace.Events.Count + 1);
        var latency = strategy == RoutingStrategy.OptimizeLatency;
        var inForce = trace.Providers.First(p => p.Id == target).Price;
        foreach (var e in trace.Events)
        {
            if (e is TracePriceEvent earlier && earlier.Provider == target && earlier.Time < at)
            {
                inForce = earlier.Price;
            }

            if (e is TraceRequestEvent r && r.Time >= at)
            {
                if (!latency && events.Count > 0 && events[^1] is TraceRequestEvent last && last.Time < at)
                {
                    events.Add(new TracePriceEvent(at, target, inForce with { VcpuSecond = inForce.VcpuSecond * 2, GibSecond = inForce.GibSecond * 2 }));
                }

                var outcomes = r.Outcomes.ToDictionary(
                    kv => kv.Key,
                    kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)
                        ? kv.Value with { LatencyMs = latency ? kv.Value.LatencyMs * 2 : kv.Value.LatencyMs, CostUsd = kv.Value.CostUsd * 2 }
                        : kv.Value,
                    StringComparer.Ordinal);
                events.Add(r with { Outcomes = outcomes });
            }
            else if (e is TracePriceEvent p && p.Provider == target && p.Time >= at)
            {
                events.Add(p with { Price = p.Price with { VcpuSecond = p.Price.VcpuSecond * 2, GibSecond = p.Price.GibSecond * 2 } });
            }
            else
            {
                events.Add(e);
            }
        }

        var shifted = await ReplayAsync(trace with { Events = events }, settings with { DecisionSamples = 10 }, cancellationToken);
        var keys = shifted.RouterKeys;
        bool Counts(int i) => requests[i].Request.Strategy == strategy && requests[i].Outcomes.Keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal));
        bool OnTarget(int i) => keys[i]?.StartsWith(prefix, StringComparison.Ordinal) == true;
        var before = Enumerable.Range(0, shiftIndex).Where(Counts).TakeLast(500).ToList();
        var shareBefore = before.Count == 0 ? 0 : before.Count(OnTarget) / (double)before.Count;
        var after = Enumerable.Range(shiftIndex, requests.Count - shiftIndex).Where(Counts).ToList();
        const int Window = 50;
        int? moved = null, runs = null;
        for (var j = Window; j <= after.Count; j++)
        {
            var window = after.Skip(j - Window).Take(Window);
            if (window.Count(OnTarget) / (double)Window <= shareBefore / 2)
            {
                moved = after[j - 1] - shiftIndex + 1;
                runs = Enumerable.Range(shiftIndex, moved.Value).Count(OnTarget);
                break;
            }
        }

        var tail = after.TakeLast(Math.Min(500, after.Count)).ToList();
        var shareAfter = tail.Count == 0 ? 0 : tail.Count(OnTarget) / (double)tail.Count;
        return new AdaptationResult(latency ? "latency doubles" : "price-sheet price doubles", target, strategy, shiftIndex, shareBefore, shareAfter, moved, runs);
    }

    /// <summary>Replays a trace once against the router and the references.</summary>
    public static async Task<BenchmarkResult> ReplayAsync(MarketTrace trace, BenchmarkSettings settings, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var listed = MarketTrace.Capabilities(trace.Providers).ToList();
        var requests = trace.Events.OfType<TraceRequestEvent>().ToList();
        var time = new ReplayClock(requests.Count > 0 ? requests[0].Time : DateTimeOffset.UnixEpoch);
        var observations = new InMemoryObservationSource();
        var store = new InMemoryModelStore();
        var options = settings.Routing;
        var holder = new RoutingModelHolder(store, new RoutingCalibration(options));
        // Prices reach the router the way they do in production: a price-sheet update of the market state, applied at the next decision.
        var market = new RoutingMarketState();
        var router = new LightGbmRouter(holder, options, new SeededExplorationRandom(settings.Seed), market);
        IRoutingLearner learner = router;
        var job = new ReoptimizationJob(observations, store, holder, market, options, time);
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
        var routerKeys = new List<string?>(requests.Count);
        int unplaced = 0, avoidable = 0, noFeasible = 0;
        var providers = listed;
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
                market.Update(new Dictionary<string, PriceSheet> { [price.Provider] = price.Price }, null, price.Time, $"trace@{price.Time:O}");
                providers = market.WithLivePrices(listed).ToList();
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
            catch (NoCandidateException refusal) when (Environment.GetEnvironmentVariable("SANDSTORM_BENCH_DEBUG") is null || Print(refusal, w))
            {
                // Refused up front: no money spent, the caller's constraint not met.
            }

            decisionTimes.Add(Stopwatch.GetElapsedTime(started).TotalMicroseconds);
            var ran = decision?.Candidates.FirstOrDefault(c => c.Rejected is null && r.Outcomes.ContainsKey(c.Key));
            routerKeys.Add(ran?.Key);
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
                health.Record(ran.Provider, ran.Region, outcome, r.Time);
                var offer = providers.First(p => p.Provider == ran.Provider);
                // What Settle does: hand the outcome (with the predictions it was placed on) to the learner at once; the
                // same observation is the re-optimisation's training data.
                var observation = new RoutingObservation
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
                    PredictedCostUsd = ran.PredictedCostUsd,
                    PredictedLatencyMs = ran.PredictedLatencyMs,
                };
                learner.Observe(observation);
                observations.Add(observation);
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

            // (b) manual: one hard-coded candidate; a run whose allowedRegions exclude its region goes to the same provider in
            // an allowed region (the endpoint a team would configure for that residency). The preferred region moves nothing:
            // it is not a constraint. No failover: when that endpoint is down, the run fails.
            var allowed = w.Constraints?.AllowedRegions;
            foreach (var (id, runtime, home) in manualKeys)
            {
                var name = $"manual {id}/{runtime}/{home}";
                var offer = providers.First(p => p.Provider == id);
                var region = allowed is null || RegionCatalog.Default.Allows(allowed, home)
                    ? home
                    : offer.Regions.FirstOrDefault(x => RegionCatalog.Default.Allows(allowed, x)) ?? home;
                var serves = offer.Runtimes.Any(o => o.Name == runtime && o.Isolation == w.IsolationLevel) && offer.Languages.Contains(w.Language)
                    && (allowed is null || RegionCatalog.Default.Allows(allowed, region));
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
            noFeasible += feasible.Any(c => r.Outcomes.ContainsKey(c.Route.Key)) ? 0 : 1;
            if (ran is null)
            {
                unplaced++;
                avoidable += oracleOutcome is { Ok: true } o2 && !Violates(o2, w) ? 1 : 0;
            }

            regret.Add(new RegretRow(w.Strategy, Bucket(w), outage, ran?.Key, routerOutcome, oracleKey, oracleOutcome));
        }

        var strategies = tallies.OrderBy(kv => kv.Key).Select(kv => Summarise(kv.Key, kv.Value)).ToList();
        var (decisionP50, decisionP99) = MeasureDecisions(router, holder.Current, providers, settings.DecisionSamples);
        return new BenchmarkResult(
            requests.Count, retrains, promotions, holder.Current?.Metadata.Version, strategies, decisionP50,
            Percentile(decisionTimes, 0.5), clock.Elapsed)
        {
            Regret = regret,
            DecisionLatencyUsP99 = decisionP99,
            ReplayDecisionUsP99 = Percentile(decisionTimes, 0.99),
            Unplaced = unplaced,
            UnplacedAvoidable = avoidable,
            NoFeasibleCandidate = noFeasible,
            RouterKeys = routerKeys,
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
    private static (double P50, double P99) MeasureDecisions(LightGbmRouter router, RoutingModel? model, IReadOnlyList<ProviderCapabilities> providers, int samples)
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

        return (Percentile(times, 0.5), Percentile(times, 0.99));
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

        var e2b = manual.Where(m => m.Name.StartsWith("manual e2b/", StringComparison.Ordinal) && m.ServesAll).ToList();
        var e2bOnly = e2b.Count == 0 ? null : strategy == RoutingStrategy.OptimizeLatency ? e2b.MinBy(m => m.MeanLatencyMs) : e2b.MinBy(m => m.TotalCost);
        return new StrategyResult(strategy, results[RouterName], best, results["cheapest list price"], results["round robin"], results["oracle"], manual)
        {
            E2BOnly = e2bOnly,
        };
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
                ["e2bOnly"] = s.E2BOnly?.ToJson(),
            };
        }

        root["decisionLatencyUsP50"] = Math.Round(result.DecisionLatencyUsP50, 1);
        root["decisionLatencyUsP99"] = Math.Round(result.DecisionLatencyUsP99, 1);
        root["unplaced"] = result.Unplaced;
        root["unplacedAvoidable"] = result.UnplacedAvoidable;
        var adaptation = new JsonArray();
        foreach (var a in result.Adaptation)
        {
            adaptation.Add(new JsonObject { ["scenario"] = a.Scenario, ["target"] = a.Target, ["requestsUntilMoved"] = a.RequestsUntilMoved, ["runsOnTargetUntilMoved"] = a.RunsOnTargetUntilMoved });
        }

        root["adaptation"] = adaptation;
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = false });
    }

    /// <summary>The figures as a table with ratios and targets.</summary>
    public static string Format(BenchmarkResult result)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.AppendLine(inv, $"routing benchmark: {result.Requests} requests, {result.Retrains} retrains ({result.Promotions} promoted), final model {result.FinalModel ?? "none"}, replay took {result.Elapsed.TotalSeconds:0.0} s");
        sb.AppendLine("references from the trace itself: oracle = best outcome per request honouring only hard constraints (isolation, allowedRegions, availability; within maxCost/maxLatency when any outcome is); best fixed = the single provider/runtime/region best in hindsight; E2B only = E2B's best single region");
        foreach (var s in result.Strategies)
        {
            sb.AppendLine();
            sb.AppendLine(inv, $"== {Wire(s.Strategy)} ({s.Router.Requests} requests) ==");
            sb.AppendLine(inv, $"{"policy",-50} {"total cost $",12} {"mean ms",9} {"p50 ms",9} {"p95 ms",9} {"fail",5} {"viol",5} {"cost/oracle",11} {"lat/oracle",10} {"cost/fixed",10} {"lat/fixed",9} {"cost/e2b",9} {"lat/e2b",8}");
            void Row(PolicyResult p, string label) => sb.AppendLine(inv,
                $"{label,-50} {p.TotalCost,12:0.000000} {p.MeanLatencyMs,9:0} {p.P50LatencyMs,9:0} {p.P95LatencyMs,9:0} {p.Failures,5} {p.Violations,5} {Ratio(p.TotalCost, s.Oracle.TotalCost),11} {Ratio(p.MeanLatencyMs, s.Oracle.MeanLatencyMs),10} {Ratio(p.TotalCost, s.BestManual.TotalCost),10} {Ratio(p.MeanLatencyMs, s.BestManual.MeanLatencyMs),9} {Ratio(p.TotalCost, s.E2BOnly?.TotalCost ?? 0),9} {Ratio(p.MeanLatencyMs, s.E2BOnly?.MeanLatencyMs ?? 0),8}");
            Row(s.Router, s.Router.Name);
            Row(s.Oracle, s.Oracle.Name);
            Row(s.BestManual, $"best fixed = {s.BestManual.Name[7..]}");
            if (s.E2BOnly is { } e2b)
            {
                Row(e2b, $"E2B only = {e2b.Name[7..]}");
            }

            Row(s.CheapestListPrice, s.CheapestListPrice.Name);
            Row(s.RoundRobin, s.RoundRobin.Name);
            foreach (var m in s.Manual)
            {
                Row(m, m.ServesAll ? m.Name : $"{m.Name} (cannot serve all)");
            }

            var cost = s.Router.TotalCost / s.Oracle.TotalCost;
            var latency = s.Router.MeanLatencyMs / s.Oracle.MeanLatencyMs;
            var goal = s.Strategy switch
            {
                RoutingStrategy.OptimizeCost => $"cost {cost:0.000}× oracle (target ≤ 1.15) {Mark(cost <= 1.15)}",
                RoutingStrategy.OptimizeLatency => $"mean latency {latency:0.000}× oracle (target ≤ 1.15) {Mark(latency <= 1.15)}",
                _ => $"cost {cost:0.000}×, latency {latency:0.000}× oracle",
            };
            sb.AppendLine(inv, $"targets: {goal}; failures+violations {s.Router.Failures}+{s.Router.Violations} (best fixed {s.BestManual.Failures}+{s.BestManual.Violations}, oracle {s.Oracle.Failures}+{s.Oracle.Violations})");
        }

        AppendRegret(sb, result.Regret);
        sb.AppendLine();
        sb.AppendLine(inv, $"unplaced: {result.Unplaced} of {result.Requests} requests ({result.NoFeasibleCandidate} had no available candidate within the hard constraints; {result.UnplacedAvoidable} the oracle placed within every constraint) — target: only where nothing satisfies the hard constraints {Mark(result.UnplacedAvoidable == 0)}");
        foreach (var a in result.Adaptation)
        {
            var delay = a.RequestsUntilMoved is { } n ? $"{n} requests after the shift ({a.RunsOnTargetUntilMoved} runs on it meanwhile)" : "never within the trace";
            sb.AppendLine(inv, $"adaptation, {a.Scenario}: {a.Target} had {a.ShareBefore:P0} of {Wire(a.Strategy)} runs it could serve; at request {a.ShiftAtRequest} its share fell to half within {delay}; {a.ShareAfter:P0} over the last 500 — target: within a few hundred runs {Mark(a.RequestsUntilMoved is <= 500)}");
        }

        sb.AppendLine(inv, $"decision time: p50 {result.DecisionLatencyUsP50:0.0} µs, p99 {result.DecisionLatencyUsP99:0.0} µs to score 8 candidates (target p50 ≤ 200 µs) {Mark(result.DecisionLatencyUsP50 <= 200)}; over the replay p50 {result.ReplayDecisionUsP50:0.0} µs, p99 {result.ReplayDecisionUsP99:0.0} µs");
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

    private static bool Print(NoCandidateException e, Workload w)
    {
        Console.Error.WriteLine($"refused: {e.Message} [{w.Strategy} maxCost={w.Constraints?.MaxCost} maxLatency={w.Constraints?.MaxLatency} timeout={w.TimeoutMs}]");
        return true;
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
