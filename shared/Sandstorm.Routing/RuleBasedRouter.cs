using Sandstorm.Core.Contracts;

namespace Sandstorm.Routing;

/// <summary>
/// The fallback router: preferred providers first, then the lowest list price per second, then the lowest recent p50.
/// The chosen candidate comes first in <see cref="RouteDecision.Candidates"/>, then the fallbacks in order, then the rejected.
/// </summary>
public sealed class RuleBasedRouter : IRunRouter
{
    public ValueTask<RouteDecision> RouteAsync(RoutingContext context, CancellationToken cancellationToken)
    {
        var (feasible, rejected) = CandidateEnumerator.Enumerate(context);
        var w = context.Workload;
        var ordered = feasible
            .OrderBy(c => c.ListPricePerSecond(w))
            .ThenBy(c => c.Health.P50LatencyMs)
            .ThenBy(c => c.Route.Key, StringComparer.Ordinal)
            .Select(c => c.Route with { PredictedCostUsd = c.ListPriceCeilingUsd(w) })
            .ToList();
        var chosen = ordered[0];
        var reason = $"rule: lowest list price among {ordered.Count} feasible candidate(s)";
        return ValueTask.FromResult(new RouteDecision(chosen, [.. ordered, .. rejected], reason));
    }
}
