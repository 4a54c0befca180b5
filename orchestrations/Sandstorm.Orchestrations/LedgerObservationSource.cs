using Sandstorm.Core.Contracts;
using Sandstorm.Providers;
using Sandstorm.Routing;
using Sandstorm.Routing.Learning;
using RoutingMarketState = Sandstorm.Routing.Reoptimization.RoutingMarketState;
using Sandstorm.Storage;

namespace Sandstorm.Orchestrations;

/// <summary>
/// The router's training data read from the billing ledger: every tenant's settled runs with the workload features the
/// Settle step recorded. It lives here because Routing must not depend on Storage; this layer sees both.
/// </summary>
public sealed class LedgerObservationSource(LedgerStore ledger, IProviderCatalog catalog, RoutingMarketState market) : IRoutingObservationSource
{
    public async Task<IReadOnlyList<RoutingObservation>> GetObservationsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        var prices = new Dictionary<(string Tenant, string Provider), PriceSheet?>();
        var result = new List<RoutingObservation>();
        // Settled time bounds the query; a run decided just before the window but settled inside it is still recent data.
        await foreach (var e in ledger.QuerySinceAsync(from, cancellationToken))
        {
            if (e.SettledAt >= to || !Learnable(e))
            {
                continue;
            }

            var price = await PriceAsync(e, prices, cancellationToken);
            if (price is null)
            {
                // A provider no longer configured: its runs say nothing about where to route now.
                continue;
            }

            result.Add(ToObservation(e, price));
        }

        result.Sort((a, b) => a.Time.CompareTo(b.Time));
        return result;
    }

    /// <summary>The observation of one ledger row, priced with <paramref name="price"/>.</summary>
    public static RoutingObservation ToObservation(LedgerEntry e, PriceSheet price) => new()
    {
        RunId = e.RunId,
        // The ledger keeps the settle time; the decision was about one end-to-end latency earlier.
        Time = e.SettledAt - TimeSpan.FromMilliseconds(Math.Max(0, e.LatencyMs)),
        Workload = new Workload
        {
            Language = e.Language,
            CodeLength = e.CodeLength,
            Requirements = e.Requirements,
            Files = e.Files,
            Cpu = e.Cpu,
            MemoryMiB = e.MemoryMiB,
            TimeoutMs = e.TimeoutMs,
            IsolationLevel = e.IsolationLevel,
            Strategy = e.Strategy,
            Constraints = e.PreferredRegion is null ? null : new RunConstraints { PreferredRegion = e.PreferredRegion },
        },
        Route = new RouteCandidate(e.Provider, e.Runtime, e.Region),
        RuntimeIsolation = e.IsolationLevel,
        Price = price,
        CostUsd = (double)e.ProviderCost,
        LatencyMs = e.LatencyMs,
        Ok = e.Status == RunStatus.Succeeded,
        PredictedCostUsd = e.PredictedCostUsd,
        PredictedLatencyMs = e.PredictedLatencyMs,
    };

    /// <summary>Cancelled and quarantined runs were stopped by someone, not by the provider; rows without a route never ran.</summary>
    // A kept sandbox's row bills its life, which says nothing about a run's cost or latency.
    private static bool Learnable(LedgerEntry e) =>
        e.Kind == LedgerEntry.RunKind &&
        e.Status is RunStatus.Succeeded or RunStatus.Failed or RunStatus.TimedOut &&
        e.Provider.Length > 0 && e.Language.Length > 0 && e.Cpu > 0 && e.LatencyMs > 0;

    private async Task<PriceSheet?> PriceAsync(LedgerEntry e, Dictionary<(string, string), PriceSheet?> cache, CancellationToken cancellationToken)
    {
        // The live price the last re-optimisation fetched, else the provider's catalogue price for that tenant.
        if (market.Prices.TryGetValue(e.Provider, out var live))
        {
            return live;
        }

        if (cache.TryGetValue((e.TenantId, e.Provider), out var cached))
        {
            return cached;
        }

        var provider = catalog.All.FirstOrDefault(p => string.Equals(p.Capabilities.Provider, e.Provider, StringComparison.OrdinalIgnoreCase));
        var capabilities = provider is null ? null : await provider.GetCapabilitiesAsync(e.TenantId, cancellationToken) ?? provider.Capabilities;
        cache[(e.TenantId, e.Provider)] = capabilities?.Price;
        return capabilities?.Price;
    }
}
