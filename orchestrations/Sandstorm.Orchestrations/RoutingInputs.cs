using Sandstorm.Core.Contracts;
using Sandstorm.Providers;
using Sandstorm.Routing;
using RoutingMarketState = Sandstorm.Routing.Reoptimization.RoutingMarketState;

namespace Sandstorm.Orchestrations;

/// <summary>
/// What the router decides over, for a run or a kept sandbox: each provider's offer to the tenant (narrowed by
/// <c>offer</c>), at the last re-optimisation's live prices, with health from the catalogue and the market.
/// </summary>
public sealed class RoutingInputs(IProviderCatalog catalog, RoutingMarketState market, TimeProvider time)
{
    public async Task<RoutingContext> ContextAsync(
        string id, string tenantId, Workload workload, Func<ISandboxProvider, ProviderCapabilities, ProviderCapabilities?>? offer, CancellationToken cancellationToken)
    {
        var providers = new List<ProviderCapabilities>();
        var health = new Dictionary<string, ProviderHealth>();
        foreach (var provider in catalog.All)
        {
            if (await provider.GetCapabilitiesAsync(tenantId, cancellationToken) is { } capabilities
                && (offer is null ? capabilities : offer(provider, capabilities)) is { } offered)
            {
                providers.Add(offered);
                health[offered.Provider] = catalog.Health(offered.Provider);
            }
        }

        // What the last re-optimisation fetched: live list prices, and regional health entries the catalogue does not keep
        // (the catalogue's own provider-wide entry is fresher, so it is not overwritten).
        foreach (var (key, entry) in market.Health)
        {
            health.TryAdd(key, entry);
        }

        return new RoutingContext(id, tenantId, workload, market.WithLivePrices(providers), health, time.GetUtcNow());
    }
}
