using System.Globalization;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Routing.Learning;

namespace Sandstorm.Routing;

/// <summary>
/// A feasible candidate with what the models (or the prior) expect of it: the point predictions (medians, shown in the route),
/// the expected values the objective sums, and the upper quantiles the constraints are checked against.
/// </summary>
public sealed record ScoredCandidate(
    Candidate Candidate, double CostUsd, double LatencyMs, int Observations, double ExpectedCostUsd, double ExpectedLatencyMs, double HighCostUsd, double HighLatencyMs)
{
    public RouteCandidate Route => Candidate.Route with { PredictedCostUsd = Math.Round(CostUsd, 8), PredictedLatencyMs = Math.Round(LatencyMs, 1) };
}

/// <summary>
/// Routes by predicted cost and latency: LightGBM heads blended with the prior per candidate, constraints checked with
/// margins calibrated on the holdout, the strategy's objective adjusted for each provider's recent failure rate, and a small
/// bounded exploration. Before any model is promoted it decides on the prior alone.
/// </summary>
public sealed class LightGbmRouter(RoutingModelHolder models, RoutingOptions options, IExplorationRandom random) : IRunRouter
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

        var within = new List<(ScoredCandidate S, double Cost, double Latency)>(scored.Count);
        var outside = new List<RouteCandidate>();
        foreach (var s in scored)
        {
            var why = Violation(s.HighCostUsd, s.HighLatencyMs, s, maxCost, maxLatency, w.TimeoutMs);
            if (why is null)
            {
                within.Add(Expected(s));
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
            foreach (var s in scored.Where(s => Violation(s.CostUsd, s.LatencyMs, s, maxCost, maxLatency, w.TimeoutMs) is null))
            {
                within.Add(Expected(s));
                outside.RemoveAll(o => o.Key == s.Candidate.Route.Key);
            }

            if (within.Count > 0)
            {
                marginNote = " (fits only without the safety margin)";
            }
            else if (maxLatency is { } ml)
            {
                // Only maxLatency binds and the fastest could still make it on a good run (the margin's mirror image below
                // the median): a late result beats a refusal (which fails the caller for certain), so run the fastest that
                // fits the budget and the timeout, and say so.
                var hopeful = scored
                    .Where(s => s.LatencyMs * s.LatencyMs / s.HighLatencyMs <= ml && Violation(s.CostUsd, s.LatencyMs, s, maxCost, null, w.TimeoutMs) is null)
                    .OrderBy(s => s.LatencyMs)
                    .FirstOrDefault();
                if (hopeful is not null)
                {
                    within.Add((hopeful, hopeful.ExpectedCostUsd, hopeful.ExpectedLatencyMs));
                    outside.RemoveAll(o => o.Key == hopeful.Candidate.Route.Key);
                    marginNote = $" (predicted {Ms(hopeful.LatencyMs)} ms may miss maxLatency {Ms(ml)}; fastest that can still make it)";
                }
            }

            if (within.Count == 0)
            {
                throw Binding(scored, maxCost, maxLatency, w.TimeoutMs);
            }
        }

        var minCost = within.Min(c => c.Cost);
        var minLatency = within.Min(c => c.Latency);
        // When maxLatency only fits below the safety margin, the strategy's metric matters less than making it at all: take the
        // candidate most likely to, the one whose highest quantile still under maxLatency is highest (a tight, slightly slower
        // host beats a faster one that scatters).
        var chance = marginNote.Length > 0 && maxLatency is not null;
        var ordered = within
            .Select(c => (c.S, Objective: chance ? -Chance(c.S, maxLatency!.Value) : w.Strategy switch
            {
                RoutingStrategy.OptimizeCost => c.Cost,
                RoutingStrategy.OptimizeLatency => c.Latency,
                _ => (c.Cost / Math.Max(minCost, 1e-12)) + (c.Latency / Math.Max(minLatency, 1e-9)),
            }))
            .OrderBy(c => c.Objective)
            .ThenBy(c => c.S.Candidate.Route.Key, StringComparer.Ordinal)
            .ToList();

        var source = model is null ? "prior (no model yet)" : $"lightgbm {model.Metadata.Version}";
        var best = ordered[0];
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
                reason = $"{source}: exploring {explore.S.Candidate.Route.Key} ({Describe(explore.S, w.Strategy)}; {explore.S.Observations} runs seen), within {options.ExplorationSlack:P0} of best {best.S.Candidate.Route.Key}";
                return Build(ordered, outside, rejected, reason);
            }
        }

        reason = $"{source}: {Goal(w.Strategy)} — {best.S.Candidate.Route.Key} ({Describe(best.S, w.Strategy)}) among {ordered.Count} of {scored.Count} candidates within constraints{marginNote}";
        return Build(ordered, outside, rejected, reason);
    }

    /// <summary>Predicted cost (USD, at the live price) and latency (ms) of each feasible candidate.</summary>
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
        var result = new ScoredCandidate[n];
        for (var i = 0; i < n; i++)
        {
            var c = feasible[i];
            var prior = RoutingPrior.Estimate(w, c.Provider.Price, c.Health);
            var seen = model?.Metadata.CandidateCounts.GetValueOrDefault(c.Route.Key) ?? 0;
            var billed = model is null ? prior.LogBilledSeconds : RoutingModel.Blend(logBilled[i], prior.LogBilledSeconds, seen, options.Trainer.PriorWeight);
            var latency = model is null ? prior.LogLatencyMs : RoutingModel.Blend(logLatency[i], prior.LogLatencyMs, seen, options.Trainer.PriorWeight);
            var (costCorrection, latencyCorrection) = calibration.Correction(c.Route.Key, ResidualSpreads.Band(Math.Exp(latency)), context.Now);
            var perSecond = RoutingFeatures.PricePerSecond(c.Provider.Price, w);
            var logCost = billed + costCorrection;
            var logMs = latency + latencyCorrection;
            var cost = Math.Exp(logCost) * perSecond;
            var ms = Math.Exp(logMs);
            if (spreads is not null)
            {
                var sd = ResidualSpreads.Lookup(spreads, c.Route.Key, ResidualSpreads.Band(ms));
                result[i] = new ScoredCandidate(
                    c, cost, ms, seen,
                    Math.Exp(logCost + (sd.CostSd * sd.CostSd / 2)) * perSecond, Math.Exp(logMs + (sd.LatencySd * sd.LatencySd / 2)),
                    Math.Exp(logCost + (z * sd.CostSd)) * perSecond, Math.Exp(logMs + (z * sd.LatencySd)));
            }
            else
            {
                // The prior (or a model stored without spreads): one margin for every candidate.
                var costMargin = metrics?.CostMargin ?? options.PriorMargin;
                var latencyMargin = metrics?.LatencyMargin ?? options.PriorMargin;
                result[i] = new ScoredCandidate(c, cost, ms, seen, cost, ms, cost * costMargin, ms * latencyMargin);
            }
        }

        return result;
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
    private static (ScoredCandidate S, double Cost, double Latency) Expected(ScoredCandidate s)
    {
        var failure = Math.Clamp(s.Candidate.Health.FailureRate, 0, 0.5);
        return (s, s.ExpectedCostUsd / (1 - failure), s.ExpectedLatencyMs / (1 - failure));
    }

    /// <summary>How many of its upper-margin widths a candidate's median sits below <paramref name="maxLatency"/> (larger = likelier to make it).</summary>
    private static double Chance(ScoredCandidate s, double maxLatency)
    {
        var width = Math.Log(Math.Max(s.HighLatencyMs, s.LatencyMs * 1.0001) / s.LatencyMs);
        return Math.Log(maxLatency / s.LatencyMs) / width;
    }

    private static string? Violation(double cost, double latency, ScoredCandidate s, double? maxCost, double? maxLatency, int timeoutMs)
    {
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

    private static NoCandidateException Binding(IReadOnlyList<ScoredCandidate> scored, double? maxCost, double? maxLatency, int timeoutMs)
    {
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
        List<(ScoredCandidate S, double Objective)> ordered, List<RouteCandidate> outside, List<RouteCandidate> rejected, string reason)
    {
        var candidates = new List<RouteCandidate>(ordered.Count + outside.Count + rejected.Count);
        candidates.AddRange(ordered.Select(c => c.S.Route));
        candidates.AddRange(outside);
        candidates.AddRange(rejected);
        return new RouteDecision(candidates[0], candidates, reason);
    }

    private static string Goal(RoutingStrategy strategy) => strategy switch
    {
        RoutingStrategy.OptimizeCost => "least predicted cost",
        RoutingStrategy.OptimizeLatency => "least predicted latency",
        _ => "best predicted cost × latency balance",
    };

    private static string Describe(ScoredCandidate s, RoutingStrategy strategy) => strategy == RoutingStrategy.OptimizeLatency
        ? $"{Ms(s.LatencyMs)} ms, {Usd(s.CostUsd)} USD"
        : $"{Usd(s.CostUsd)} USD, {Ms(s.LatencyMs)} ms";

    internal static string Usd(double v) => v.ToString("G3", CultureInfo.InvariantCulture);

    internal static string Ms(double v) => v.ToString("0", CultureInfo.InvariantCulture);
}
