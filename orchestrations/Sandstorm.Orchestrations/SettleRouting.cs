using Sandstorm.Core.Contracts;
using Sandstorm.Core.Pricing;
using Sandstorm.Providers;
using Sandstorm.Routing;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Market;
using RoutingMarketState = Sandstorm.Routing.Reoptimization.RoutingMarketState;

namespace Sandstorm.Orchestrations;

/// <summary>
/// What Settle owes the router and the bill: the tier fees against Autopilot's baseline, the run's grams of CO₂e, and the
/// outcome handed to <see cref="IRoutingLearner"/> so the next decision already knows it. Kept out of <c>SettleActivity</c>
/// so the activity only calls it.
/// </summary>
public sealed class SettleRouting(IRoutingLearner learner, RoutingMarketState market, IProviderCatalog catalog)
{
    /// <summary>
    /// What Shield bills a run on: its monitored seconds when the monitor really watched it — full coverage, and partial
    /// too (gVisor's trace points: most rules fire and kill there; the result says what is not seen) — and nothing when the
    /// coverage was none (a cloud, a machine without eBPF, a run stopped before its result), whatever the tier asked.
    /// </summary>
    public static ShieldCoverage? ShieldBilled(ShieldReport? report) =>
        report is { Coverage: not ShieldCoverageLevel.None, MonitoredMs: > 0 } ? new ShieldCoverage(report.MonitoredMs / 1000.0) : null;

    /// <summary>
    /// The run's fees: Autopilot on the savings against the decision's baseline, Shield per monitored second
    /// (<paramref name="shield"/>, from <see cref="ShieldBilled"/>; null = no real coverage, no Shield fee).
    /// </summary>
    public static FeeBreakdown Fees(string provider, decimal providerCost, SecurityTier tier, RouteDecision? route, ShieldCoverage? shield = null) =>
        TierFees.Compute(new FeeInput(provider, providerCost, tier)
        {
            BaselineCost = route?.Baseline?.PredictedCostUsd is { } b ? (decimal)b : null,
            Shield = shield,
        });

    /// <summary>Grams CO₂e of the execution: its wall time and resources × the grid intensity of its region in that hour (null if unknown).</summary>
    public double? CarbonGrams(SandboxLease? lease, Workload workload, ExecutionSummary? result, DateTimeOffset at)
    {
        if (lease is null || result is null || market.Carbon.GramsPerKwh(lease.Region, at) is not { } intensity)
        {
            return null;
        }

        return Math.Round(EnergyModel.Grams(workload.Cpu, workload.MemoryMiB, result.WallTimeMs / 1000.0, intensity), 6);
    }

    /// <summary>
    /// Hands the outcome to the router at once (calibration and failure rates move before the next decision). Runs stopped by
    /// someone (cancelled, quarantined) and runs that never ran teach nothing. Never throws: learning must not fail a settle.
    /// </summary>
    public void Observe(SettleInput input, Workload workload, decimal providerCost)
    {
        var lease = input.Lease;
        if (lease is null || input.Status is not (RunStatus.Succeeded or RunStatus.Failed or RunStatus.TimedOut))
        {
            return;
        }

        try
        {
            var ran = input.Route?.Candidates.FirstOrDefault(c =>
                c.Provider == lease.Provider && c.Runtime == lease.Runtime && c.Region == lease.Region && c.Rejected is null);
            var price = market.Prices.TryGetValue(lease.Provider, out var live) ? live : catalog.Get(lease.Provider).Capabilities.Price;
            var latency = (input.FinishedAt - input.Run.SubmittedAt).TotalMilliseconds;
            learner.Observe(new RoutingObservation
            {
                RunId = input.Run.RunId,
                Time = input.Run.SubmittedAt,
                Workload = workload,
                Route = new RouteCandidate(lease.Provider, lease.Runtime, lease.Region),
                RuntimeIsolation = workload.IsolationLevel,
                Price = price,
                CostUsd = (double)providerCost,
                LatencyMs = latency,
                Ok = input.Status == RunStatus.Succeeded,
                PredictedCostUsd = ran?.PredictedCostUsd,
                PredictedLatencyMs = ran?.PredictedLatencyMs,
            });
        }
        catch (KeyNotFoundException)
        {
            // A provider removed since the run was placed: nothing to learn about where to route now.
        }
    }
}

/// <summary>The router's offline view of the market, over the providers' own catalogue and health (tenant-independent capabilities).</summary>
public sealed class ProviderCatalogMarketSource(IProviderCatalog catalog) : Routing.Reoptimization.IRoutingMarketSource
{
    public Task<IReadOnlyList<ProviderCapabilities>> GetProvidersAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ProviderCapabilities>>(catalog.All.Select(p => p.Capabilities).Where(c => c.Regions.Count > 0).ToList());

    public Task<IReadOnlyDictionary<string, ProviderHealth>> GetHealthAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyDictionary<string, ProviderHealth>>(
            catalog.All.ToDictionary(p => p.Capabilities.Provider, p => catalog.Health(p.Capabilities.Provider), StringComparer.OrdinalIgnoreCase));
}
