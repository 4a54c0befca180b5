using Sandstorm.Core.Contracts;

namespace Sandstorm.Routing.Learning;

/// <summary>
/// What the router believes before it has data: the price catalogue times an expected duration.
/// Expected run time = language start-up + 5 s per declared requirement (package install) + 0.1 s per KB of code,
/// plus 1 s of sandbox start-up, capped at the timeout; billing minimums and granularity come from the price sheet.
/// Latency is that duration, stretched by the edge queue depth. Deliberately crude: it only has to rank list prices
/// sensibly until the models have seen a candidate (see <see cref="RoutingModel.Blend"/>).
/// </summary>
public static class RoutingPrior
{
    /// <summary>Seconds of sandbox provisioning assumed for any provider.</summary>
    public const double StartupSeconds = 1.0;

    /// <summary>Seconds per declared requirement (a pip/npm install).</summary>
    public const double SecondsPerRequirement = 5.0;

    /// <summary>Expected execution seconds of a workload, before any provider effect.</summary>
    public static double ExpectedRunSeconds(Workload w)
    {
        var start = w.Language switch
        {
            Languages.Python => 0.6,
            Languages.JavaScript => 0.4,
            _ => 0.2,
        };
        var seconds = start + (SecondsPerRequirement * w.Requirements) + (0.1 * w.CodeLength / 1024.0);
        return Math.Min(seconds, w.TimeoutMs / 1000.0);
    }

    /// <summary>Round trips to the caller's region the prior assumes a run makes (fetching inputs, returning results).</summary>
    public const double CallerRoundTrips = 4;

    /// <summary>Billed seconds (log) and latency (log ms) the prior expects on a placement in <paramref name="region"/>.</summary>
    public static (double LogBilledSeconds, double LogLatencyMs) Estimate(Workload w, PriceSheet price, ProviderHealth health, string region = "")
    {
        var lifetime = ExpectedRunSeconds(w) + StartupSeconds + (CallerRoundTrips * RoutingFeatures.CallerRoundTripMs(w, region) / 1000);
        var billed = Math.Max(lifetime, price.MinimumSeconds);
        if (price.GranularitySeconds > 0)
        {
            billed = Math.Ceiling(billed / price.GranularitySeconds) * price.GranularitySeconds;
        }

        var latencyMs = lifetime * 1000 * (1 + (0.5 * Math.Max(0, health.QueueDepth)));
        return (Math.Log(Math.Max(billed, 1e-3)), Math.Log(latencyMs));
    }
}
