using System.Globalization;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Market;
using Sandstorm.Routing.Reoptimization;

namespace Sandstorm.Routing;

/// <summary>
/// A feasible candidate with what the models (or the prior) expect of it: the point predictions (medians, shown in the route),
/// the expected values the objective sums, and the upper quantiles the constraints are checked against. Carbon figures are
/// null where no grid intensity is known for the region; <see cref="RegionPenaltyMs"/> is the caller's soft region preference.
/// </summary>
public sealed record ScoredCandidate(
    Candidate Candidate, double CostUsd, double LatencyMs, int Observations, double ExpectedCostUsd, double ExpectedLatencyMs, double HighCostUsd, double HighLatencyMs)
{
    public double? CarbonGrams { get; init; }

    public double? ExpectedCarbonGrams { get; init; }

    public double? HighCarbonGrams { get; init; }

    /// <summary>preferredRegionWeight × round trip from the preferred region (ms), added to the latency the strategy weighs.</summary>
    public double RegionPenaltyMs { get; init; }

    public RouteCandidate Route => Candidate.Route with
    {
        PredictedCostUsd = Math.Round(CostUsd, 8),
        PredictedLatencyMs = Math.Round(LatencyMs, 1),
        PredictedCarbonGrams = CarbonGrams is { } g ? Math.Round(g, 6) : null,
    };
}

/// <summary>
/// Routes by predicted cost, latency and carbon: LightGBM heads blended with the prior per candidate, calibrated online from
/// every settled run (<see cref="IRoutingLearner"/>), constraints checked with per-candidate margins, the strategy's objective
/// adjusted for each placement's recent failure rate and the caller's soft region preference, and a small bounded
/// exploration. Before any model is promoted it decides on the prior alone.
/// </summary>
public sealed class LightGbmRouter(RoutingModelHolder models, RoutingOptions options, IExplorationRandom random, RoutingMarketState? market = null)
    : IRunRouter, IRoutingLearner
{
    public async ValueTask<RouteDecision> RouteAsync(RoutingContext context, CancellationToken cancellationToken)
    {
        var model = models.Current ?? await models.GetAsync(cancellationToken);
        return Decide(context, model);
    }

    /// <summary>The decision for a context with a given model (null = prior); synchronous and allocation-light for the hot path.</summary>
    public RouteDecision Decide(RoutingContext context, RoutingModel? model)
    {
        var (feasible, rejected) = CandidateEnumerator.Enumerate(context);
        var w = context.Workload;
        var scored = Score(context, feasible, model);
        var maxCost = (double?)w.Constraints?.MaxCost;
        var maxLatency = (double?)w.Constraints?.MaxLatency;
        var maxCarbon = w.Constraints?.MaxCarbon;

        var within = new List<(ScoredCandidate S, double Cost, double Latency)>(scored.Count);
        var outside = new List<RouteCandidate>();
        foreach (var s in scored)
        {
            var why = Violation(s.HighCostUsd, s.HighLatencyMs, s.HighCarbonGrams, s, maxCost, maxLatency, maxCarbon, w.TimeoutMs);
            if (why is null)
            {
                within.Add(Expected(s, context.Now));
            }
            else
            {
                outside.Add(s.Route with { Rejected = why });
            }
        }

        var marginNote = "";
        if (within.Count == 0)
        {
            // Nothing fits with the safety margins: accept what fits on the point predictions, and say so, before refusing.
            foreach (var s in scored.Where(s => Violation(s.CostUsd, s.LatencyMs, s.CarbonGrams, s, maxCost, maxLatency, maxCarbon, w.TimeoutMs) is null))
            {
                within.Add(Expected(s, context.Now));
                outside.RemoveAll(o => o.Key == s.Candidate.Route.Key);
            }

            if (within.Count > 0)
            {
                marginNote = " (fits only without the safety margin)";
            }
            else
            {
                // Nothing fits on its median either, but some candidate could on a good run (the margin's mirror image below
                // the median): a placement that may overrun beats a refusal, which fails the caller for certain. Run the one
                // most likely to fit every limit, and say so. Only a run no candidate could fit even then is refused.
                // A candidate whose limits sit within a few margin widths below its median still succeeds on a lucky run.
                var hopeful = scored
                    .Select(s => (S: s, Chance: Math.Min(Chance(s, maxCost, maxLatency, maxCarbon), Chance(s, null, w.TimeoutMs, null))))
                    .Where(c => c.Chance >= -HopefulWidths && (maxCarbon is null || c.S.CarbonGrams is not null))
                    .OrderByDescending(c => c.Chance)
                    .Select(c => c.S)
                    .FirstOrDefault();
                if (hopeful is not null)
                {
                    within.Add((hopeful, hopeful.ExpectedCostUsd, hopeful.ExpectedLatencyMs));
                    outside.RemoveAll(o => o.Key == hopeful.Candidate.Route.Key);
                    marginNote = $" (predicted {Describe(hopeful, RoutingStrategy.Balanced)} may exceed the run's limits; the candidate most likely to fit them)";
                }
            }

            if (within.Count == 0)
            {
                throw Binding(scored, maxCost, maxLatency, maxCarbon, w.TimeoutMs);
            }
        }

        var minCost = within.Min(c => c.Cost);
        var minLatency = within.Min(c => c.Latency + c.S.RegionPenaltyMs);
        var strategy = w.Strategy;
        var carbonNote = "";
        if (strategy == RoutingStrategy.OptimizeCarbon && within.All(c => c.S.ExpectedCarbonGrams is null))
        {
            strategy = RoutingStrategy.OptimizeCost;
            carbonNote = " (no grid intensity known for any candidate: least cost instead)";
        }

        // When maxLatency only fits below the safety margin, the strategy's metric matters less than making it at all: take the
        // candidate most likely to, the one whose highest quantile still under maxLatency is highest (a tight, slightly slower
        // host beats a faster one that scatters).
        var chance = marginNote.Length > 0 && (maxLatency is not null || maxCost is not null || maxCarbon is not null);
        var ordered = within
            .Select(c => (c.S, Objective: chance ? -Chance(c.S, maxCost, maxLatency, maxCarbon) : Objective(strategy, c, minCost, minLatency, context.Now)))
            .OrderBy(c => c.Objective)
            .ThenBy(c => c.S.ExpectedCostUsd)
            .ThenBy(c => c.S.Candidate.Route.Key, StringComparer.Ordinal)
            .ToList();

        var source = model is null ? "prior (no model yet)" : $"lightgbm {model.Metadata.Version}";
        var best = ordered[0];
        var baseline = Baseline(context, scored);
        string reason;
        if (ordered.Count > 1 && options.ExplorationRate > 0 && best.S.LatencyMs <= options.ExplorationMaxLatencyMs && random.NextDouble() < options.ExplorationRate)
        {
            // Try the least-known alternative whose objective is close to the best, never one outside the constraints.
            var near = ordered.Skip(1).Where(c => c.Objective <= best.Objective * (1 + options.ExplorationSlack)).ToList();
            if (near.Count > 0)
            {
                var fewest = near.Min(c => c.S.Observations);
                var pick = near.Where(c => c.S.Observations == fewest).ToList();
                var explore = pick[random.Next(pick.Count)];
                ordered.Remove(explore);
                ordered.Insert(0, explore);
                reason = $"{source}: exploring {explore.S.Candidate.Route.Key} ({Describe(explore.S, strategy)}; {explore.S.Observations} runs seen), within {options.ExplorationSlack:P0} of best {best.S.Candidate.Route.Key}";
                return Build(ordered, outside, rejected, reason, strategy, explored: true) with { Baseline = baseline };
            }
        }

        reason = $"{source}: {Goal(strategy)} — {best.S.Candidate.Route.Key} ({Describe(best.S, strategy)}) among {ordered.Count} of {scored.Count} candidates within constraints{marginNote}{carbonNote}";
        return Build(ordered, outside, rejected, reason, strategy, explored: false) with { Baseline = baseline };
    }

    /// <summary>
    /// Autopilot's baseline: the single provider the tenant would otherwise have used (<see cref="RoutingOptions.TenantBaselineProviders"/>,
    /// else <see cref="RoutingOptions.BaselineProvider"/>, else the cloud provider with the lowest list price for these resources
    /// among those that can run the request), in its best region for the request by expected cost; null when it cannot run it.
    /// </summary>
    private RouteCandidate? Baseline(RoutingContext context, IReadOnlyList<ScoredCandidate> scored)
    {
        var w = context.Workload;
        var configured = options.TenantBaselineProviders.GetValueOrDefault(context.TenantId) ?? options.BaselineProvider;
        var cloud = scored.Where(s => !Core.Pricing.TierFees.IsOwnCompute(s.Candidate.Route.Provider)).ToList();
        var provider = configured ?? cloud
            .OrderBy(s => s.Candidate.ListPricePerSecond(w))
            .ThenBy(s => s.Candidate.Route.Provider, StringComparer.Ordinal)
            .Select(s => s.Candidate.Route.Provider)
            .FirstOrDefault();
        var best = cloud
            .Where(s => string.Equals(s.Candidate.Route.Provider, provider, StringComparison.OrdinalIgnoreCase))
            .MinBy(s => s.ExpectedCostUsd);
        return best is null
            ? null
            : best.Candidate.Route with { PredictedCostUsd = Math.Round(best.ExpectedCostUsd, 8), PredictedLatencyMs = Math.Round(best.ExpectedLatencyMs, 1), Why = "Autopilot baseline: expected cost on the provider the tenant would otherwise use" };
    }

    private static double Objective(RoutingStrategy strategy, (ScoredCandidate S, double Cost, double Latency) c, double minCost, double minLatency, DateTimeOffset now)
    {
        var penalty = c.S.RegionPenaltyMs;
        return strategy switch
        {
            // A cost-optimised run values the caller's region preference as the same share of its run time, applied to cost.
            RoutingStrategy.OptimizeCost => c.Cost * (1 + (penalty / Math.Max(c.Latency, 1))),
            RoutingStrategy.OptimizeLatency => c.Latency + penalty,
            RoutingStrategy.OptimizeCarbon => c.S.ExpectedCarbonGrams is { } g ? g / (1 - FailureShare(c)) : double.MaxValue,
            _ => (c.Cost / Math.Max(minCost, 1e-12)) + ((c.Latency + penalty) / Math.Max(minLatency, 1e-9)),
        };
    }

    private static double FailureShare((ScoredCandidate S, double Cost, double Latency) c) => 1 - (c.S.ExpectedCostUsd / Math.Max(c.Cost, 1e-15));

    /// <summary>Predicted cost (USD, at the live price), latency (ms) and carbon (g) of each feasible candidate.</summary>
    public IReadOnlyList<ScoredCandidate> Score(RoutingContext context, IReadOnlyList<Candidate> feasible, RoutingModel? model)
    {
        var w = context.Workload;
        var n = feasible.Count;
        var logBilled = new double[n];
        var logLatency = new double[n];
        if (model is not null)
        {
            var rows = new float[n][];
            for (var i = 0; i < n; i++)
            {
                rows[i] = RoutingFeatures.Extract(w, feasible[i], context.Now);
            }

            model.Predict(rows, logBilled, logLatency);
        }

        var calibration = models.Calibration;
        var metrics = model?.Metadata.Metrics;
        var spreads = metrics?.Spreads is { Count: > 0 } known ? known : null;
        var z = options.SafetyQuantileZ;
        var carbon = market?.Carbon;
        var weight = w.Constraints?.PreferredRegionWeight ?? 0;
        var result = new ScoredCandidate[n];
        for (var i = 0; i < n; i++)
        {
            var c = feasible[i];
            var prior = RoutingPrior.Estimate(w, c.Provider.Price, c.Health, c.Route.Region);
            var seen = model?.Metadata.CandidateCounts.GetValueOrDefault(c.Route.Key) ?? 0;
            var billed = model is null ? prior.LogBilledSeconds : RoutingModel.Blend(logBilled[i], prior.LogBilledSeconds, seen, options.Trainer.PriorWeight);
            var latency = model is null ? prior.LogLatencyMs : RoutingModel.Blend(logLatency[i], prior.LogLatencyMs, seen, options.Trainer.PriorWeight);
            var (costCorrection, latencyCorrection) = calibration.Correction(c.Route.Key, ResidualSpreads.Band(Math.Exp(latency)), context.Now);
            var perSecond = RoutingFeatures.PricePerSecond(c.Provider.Price, w);
            var logCost = billed + costCorrection;
            var logMs = latency + latencyCorrection;
            var cost = Math.Exp(logCost) * perSecond;
            var ms = Math.Exp(logMs);
            ScoredCandidate s;
            if (spreads is not null)
            {
                var sd = ResidualSpreads.Lookup(spreads, c.Route.Key, ResidualSpreads.Band(ms));
                s = new ScoredCandidate(
                    c, cost, ms, seen,
                    Math.Exp(logCost + (sd.CostSd * sd.CostSd / 2)) * perSecond, Math.Exp(logMs + (sd.LatencySd * sd.LatencySd / 2)),
                    Math.Exp(logCost + (z * sd.CostSd)) * perSecond, Math.Exp(logMs + (z * sd.LatencySd)));
            }
            else
            {
                // The prior (or a model stored without spreads): one margin for every candidate.
                var costMargin = metrics?.CostMargin ?? options.PriorMargin;
                var latencyMargin = metrics?.LatencyMargin ?? options.PriorMargin;
                s = new ScoredCandidate(c, cost, ms, seen, cost, ms, cost * costMargin, ms * latencyMargin);
            }

            if (carbon?.GramsPerKwh(c.Route.Region, context.Now) is { } intensity)
            {
                // Energy follows how long the sandbox lives, which the latency head predicts.
                s = s with
                {
                    CarbonGrams = EnergyModel.Grams(w.Cpu, w.MemoryMiB, s.LatencyMs / 1000, intensity),
                    ExpectedCarbonGrams = EnergyModel.Grams(w.Cpu, w.MemoryMiB, s.ExpectedLatencyMs / 1000, intensity),
                    HighCarbonGrams = EnergyModel.Grams(w.Cpu, w.MemoryMiB, s.HighLatencyMs / 1000, intensity),
                };
            }

            if (weight > 0)
            {
                s = s with { RegionPenaltyMs = weight * RoutingFeatures.CallerRoundTripMs(w, c.Route.Region) };
            }

            result[i] = s;
        }

        return result;
    }

    /// <summary>The failure rate learnt online for a <c>provider/region</c> (what the objective adds to the provider's own).</summary>
    public double LearntFailureRate(string healthKey, DateTimeOffset now) => models.Calibration.FailureRate(healthKey, now);

    /// <summary>
    /// Online learning from a settled run (Settle calls it through <see cref="IRoutingLearner"/>): the placement's failure rate,
    /// and for a successful run the residual of its cost and latency against what was predicted, into the calibration the
    /// next decision reads. Failed runs teach only the failure rate (their partial cost and time say little about a full run).
    /// </summary>
    public void Observe(RoutingObservation observation)
    {
        var o = observation;
        models.Calibration.ObserveOutcome(CandidateEnumerator.HealthKey(o.Route.Provider, o.Route.Region), o.Time, o.Ok);
        if (!o.Ok || o.CostUsd <= 0 || o.LatencyMs <= 0)
        {
            return;
        }

        if (o.PredictedCostUsd is > 0 && o.PredictedLatencyMs is > 0)
        {
            Observe(o.Route with { PredictedCostUsd = o.PredictedCostUsd, PredictedLatencyMs = o.PredictedLatencyMs }, o.Time, o.CostUsd, o.LatencyMs, o.Ok);
            return;
        }

        // No prediction travelled with the run (a run routed elsewhere, or by an older version): predict it now, uncalibrated.
        var model = models.Current;
        var prior = RoutingPrior.Estimate(o.Workload, o.Price, o.Health, o.Route.Region);
        var (cost, latency) = (prior.LogBilledSeconds, prior.LogLatencyMs);
        if (model is not null)
        {
            var (c, l) = model.PredictBatch([RoutingFeatures.Extract(o)]);
            (cost, latency) = (c[0], l[0]);
        }

        models.Calibration.Observe(o.Route.Key, ResidualSpreads.Band(Math.Exp(latency)), o.Time, RoutingModelTrainer.CostLabel(o) - cost, RoutingModelTrainer.LatencyLabel(o) - latency);
    }

    /// <summary>
    /// Online learning between retrains: what the chosen candidate (as decided, with its predictions) actually did.
    /// Failed runs teach nothing here (their partial cost and time say little about a full run; the failure rate covers them).
    /// </summary>
    public void Observe(RouteCandidate chosen, DateTimeOffset time, double costUsd, double latencyMs, bool ok)
    {
        if (!ok || chosen.PredictedCostUsd is not > 0 || chosen.PredictedLatencyMs is not > 0 || costUsd <= 0 || latencyMs <= 0)
        {
            return;
        }

        // The prediction already carried the correction: take it back out so the residual is against the uncalibrated heads,
        // in the band the uncalibrated prediction fell in (the one whose correction maps it back into that band).
        var band = ResidualSpreads.Band(chosen.PredictedLatencyMs.Value);
        var (cost, latency) = models.Calibration.Correction(chosen.Key, band, time);
        for (var b = 0; b <= ResidualSpreads.MaxBand; b++)
        {
            var correction = models.Calibration.Correction(chosen.Key, b, time);
            if (ResidualSpreads.Band(chosen.PredictedLatencyMs.Value / Math.Exp(correction.Latency)) == b)
            {
                (band, cost, latency) = (b, correction.Cost, correction.Latency);
                break;
            }
        }

        models.Calibration.Observe(
            chosen.Key,
            band,
            time,
            Math.Log(costUsd / chosen.PredictedCostUsd.Value) + cost,
            Math.Log(latencyMs / chosen.PredictedLatencyMs.Value) + latency);
    }

    /// <summary>
    /// The objective's view of a candidate: expected cost and latency until success. A run that fails is paid and retried,
    /// so at failure rate f it takes 1 / (1 − f) attempts on average.
    /// </summary>
    private (ScoredCandidate S, double Cost, double Latency) Expected(ScoredCandidate s, DateTimeOffset now)
    {
        var learnt = models.Calibration.FailureRate(CandidateEnumerator.HealthKey(s.Candidate.Route.Provider, s.Candidate.Route.Region), now);
        var failure = Math.Clamp(Math.Max(s.Candidate.Health.FailureRate, learnt), 0, 0.5);
        return (s, s.ExpectedCostUsd / (1 - failure), s.ExpectedLatencyMs / (1 - failure));
    }

    /// <summary>
    /// How likely a candidate is to fit every limit: the smallest, over the limits set, of how many upper-margin widths its
    /// median sits below the limit (larger = likelier; negative = its median is over).
    /// </summary>
    private static double Chance(ScoredCandidate s, double? maxCost, double? maxLatency, double? maxCarbon)
    {
        static double Widths(double median, double high, double limit) =>
            Math.Log(limit / median) / Math.Log(Math.Max(high, median * 1.0001) / median);
        var chance = double.MaxValue;
        if (maxLatency is { } ml)
        {
            chance = Math.Min(chance, Widths(s.LatencyMs, s.HighLatencyMs, ml));
        }

        if (maxCost is { } mc)
        {
            chance = Math.Min(chance, Widths(s.CostUsd, s.HighCostUsd, mc));
        }

        if (maxCarbon is { } mg && s.CarbonGrams is { } g && s.HighCarbonGrams is { } hg)
        {
            chance = Math.Min(chance, Widths(g, hg, mg));
        }

        return chance;
    }

    /// <summary>
    /// How many margin widths below its median a limit may sit for a candidate still to be tried rather than the run refused:
    /// with the margin at the 90th percentile a width is ~1.28σ, so 3 widths reach a ~1-in-10,000 run; beyond, refuse.
    /// </summary>
    private const double HopefulWidths = 3;

    private static string? Violation(double cost, double latency, double? carbon, ScoredCandidate s, double? maxCost, double? maxLatency, double? maxCarbon, int timeoutMs)
    {
        if (maxCarbon is { } mg && carbon is null)
        {
            return $"no grid intensity known for region '{s.Candidate.Route.Region}' (maxCarbon)";
        }

        if (maxCarbon is { } mg2 && carbon > mg2)
        {
            return $"predicted carbon {Usd(carbon!.Value)} g CO2e > maxCarbon {Usd(mg2)}";
        }

        if (maxCost is { } mc && cost > mc)
        {
            return $"predicted cost {Usd(cost)} USD > maxCost {Usd(mc)}";
        }

        if (maxLatency is { } ml && latency > ml)
        {
            return $"predicted latency {Ms(latency)} ms > maxLatency {Ms(ml)}";
        }

        // A run predicted to outlive its own timeout would fail; no margin here, the timeout is not the caller's budget.
        return s.LatencyMs > timeoutMs ? $"predicted latency {Ms(s.LatencyMs)} ms > timeout {timeoutMs}" : null;
    }

    private static NoCandidateException Binding(IReadOnlyList<ScoredCandidate> scored, double? maxCost, double? maxLatency, double? maxCarbon, int timeoutMs)
    {
        if (maxCarbon is { } mg && scored.All(s => s.HighCarbonGrams is null || s.HighCarbonGrams > mg))
        {
            var known = scored.Where(s => s.HighCarbonGrams is not null).Select(s => s.HighCarbonGrams!.Value).DefaultIfEmpty(double.NaN).Min();
            return new NoCandidateException(
                ErrorCodes.NoCandidate,
                double.IsNaN(known)
                    ? $"maxCarbon {Usd(mg)} g CO2e: no grid intensity is known for any candidate's region"
                    : $"maxCarbon {Usd(mg)} g CO2e: least predicted candidate emits {Usd(known)} g (with safety margins)");
        }

        var note = scored.Any(s => s.HighCostUsd > s.CostUsd || s.HighLatencyMs > s.LatencyMs) ? " (with safety margins)" : "";
        var cheapest = scored.Min(s => s.HighCostUsd);
        var fastest = scored.Min(s => s.HighLatencyMs);
        var costFails = maxCost is { } c && scored.All(s => s.HighCostUsd > c);
        var latencyFails = maxLatency is { } l && scored.All(s => s.HighLatencyMs > l);
        string message;
        if (costFails)
        {
            message = $"maxCost {Usd(maxCost!.Value)} USD: cheapest predicted candidate costs {Usd(cheapest)}{note}";
        }
        else if (latencyFails)
        {
            message = $"maxLatency {Ms(maxLatency!.Value)} ms: fastest predicted candidate takes {Ms(fastest)} ms{note}";
        }
        else if (scored.All(s => s.LatencyMs > timeoutMs))
        {
            message = $"timeout {timeoutMs} ms: fastest predicted candidate takes {Ms(scored.Min(s => s.LatencyMs))} ms";
        }
        else
        {
            var withinLatency = scored.Where(s => maxLatency is null || s.HighLatencyMs <= maxLatency).Select(s => s.HighCostUsd).DefaultIfEmpty(double.NaN).Min();
            var withinCost = scored.Where(s => maxCost is null || s.HighCostUsd <= maxCost).Select(s => s.HighLatencyMs).DefaultIfEmpty(double.NaN).Min();
            message = $"maxCost {Usd(maxCost ?? double.NaN)} USD and maxLatency {Ms(maxLatency ?? timeoutMs)} ms together: " +
                $"cheapest candidate within maxLatency costs {Usd(withinLatency)}, fastest within maxCost takes {Ms(withinCost)} ms{note}";
        }

        return new NoCandidateException(ErrorCodes.NoCandidate, message);
    }

    private static RouteDecision Build(
        List<(ScoredCandidate S, double Objective)> ordered, List<RouteCandidate> outside, List<RouteCandidate> rejected, string reason, RoutingStrategy strategy, bool explored)
    {
        var candidates = new List<RouteCandidate>(ordered.Count + outside.Count + rejected.Count);
        var first = ordered[0];
        for (var i = 0; i < ordered.Count; i++)
        {
            var c = ordered[i];
            var why = i == 0
                ? (explored ? $"chosen to explore: {Describe(c.S, strategy)}, {c.S.Observations} runs seen" : $"chosen: {Goal(strategy)} ({Describe(c.S, strategy)})")
                : $"fallback {i}: {Describe(c.S, strategy)}; {Lost(c, first, strategy)}";
            if (c.S.RegionPenaltyMs > 0)
            {
                why += $"; region preference adds {Ms(c.S.RegionPenaltyMs)} ms";
            }

            candidates.Add(c.S.Route with { Why = why });
        }

        candidates.AddRange(outside.Select(o => o with { Why = "outside the constraints: " + o.Rejected }));
        candidates.AddRange(rejected.Select(r => r with { Why = "not a candidate: " + r.Rejected }));
        return new RouteDecision(candidates[0], candidates, reason);
    }

    private static string Lost((ScoredCandidate S, double Objective) c, (ScoredCandidate S, double Objective) chosen, RoutingStrategy strategy)
    {
        var ratio = chosen.Objective > 0 && c.Objective > 0 ? c.Objective / chosen.Objective : double.NaN;
        var metric = strategy switch
        {
            RoutingStrategy.OptimizeCost => "expected cost",
            RoutingStrategy.OptimizeLatency => "expected latency",
            RoutingStrategy.OptimizeCarbon => "expected carbon",
            _ => "cost × latency score",
        };
        return double.IsNaN(ratio) ? $"ranked after the chosen on {metric}" : $"{metric} {ratio.ToString("0.00", CultureInfo.InvariantCulture)}× the chosen's";
    }

    private static string Goal(RoutingStrategy strategy) => strategy switch
    {
        RoutingStrategy.OptimizeCost => "least predicted cost",
        RoutingStrategy.OptimizeLatency => "least predicted latency",
        RoutingStrategy.OptimizeCarbon => "least predicted carbon",
        _ => "best predicted cost × latency balance",
    };

    private static string Describe(ScoredCandidate s, RoutingStrategy strategy) => strategy switch
    {
        RoutingStrategy.OptimizeLatency => $"{Ms(s.LatencyMs)} ms, {Usd(s.CostUsd)} USD",
        RoutingStrategy.OptimizeCarbon => $"{(s.CarbonGrams is { } g ? Usd(g) : "?")} g CO2e, {Usd(s.CostUsd)} USD, {Ms(s.LatencyMs)} ms",
        _ => $"{Usd(s.CostUsd)} USD, {Ms(s.LatencyMs)} ms",
    };

    internal static string Usd(double v) => v.ToString("G3", CultureInfo.InvariantCulture);

    internal static string Ms(double v) => v.ToString("0", CultureInfo.InvariantCulture);
}
