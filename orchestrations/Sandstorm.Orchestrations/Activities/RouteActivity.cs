using Microsoft.DurableTask;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Observability;
using Sandstorm.Providers;
using Sandstorm.Routing;
using RoutingMarketState = Sandstorm.Routing.Reoptimization.RoutingMarketState;

namespace Sandstorm.Orchestrations.Activities;

/// <summary>Step 1: picks the provider, runtime and region (chosen first, fallbacks after) or says which constraint binds.</summary>
public sealed class RouteActivity(IProviderCatalog catalog, IRunRouter router, RoutingMarketState market, TimeProvider time)
    : TaskActivity<RunTicket, RouteOutcome>
{
    public override Task<RouteOutcome> RunAsync(TaskActivityContext context, RunTicket input) => ExecuteAsync(input, CancellationToken.None);

    public Task<RouteOutcome> ExecuteAsync(RunTicket input, CancellationToken cancellationToken) =>
        RunObservability.TraceAsync(ObservabilityNames.Spans.Route, input, () => RouteAsync(input, cancellationToken), (span, o) => RunObservability.Routed(span, input, o));

    private async Task<RouteOutcome> RouteAsync(RunTicket input, CancellationToken cancellationToken)
    {
        var providers = new List<ProviderCapabilities>();
        var health = new Dictionary<string, ProviderHealth>();
        foreach (var provider in catalog.All)
        {
            if (await provider.GetCapabilitiesAsync(input.TenantId, cancellationToken) is { } capabilities)
            {
                providers.Add(capabilities);
                health[capabilities.Provider] = catalog.Health(capabilities.Provider);
            }
        }

        // What the last re-optimisation fetched: live list prices, and regional health entries the catalogue does not keep
        // (the catalogue's own provider-wide entry is fresher, so it is not overwritten).
        foreach (var (key, entry) in market.Health)
        {
            health.TryAdd(key, entry);
        }

        try
        {
            var context = new RoutingContext(input.RunId, input.TenantId, Workload.From(input.Intent), market.WithLivePrices(providers), health, time.GetUtcNow());
            return new RouteOutcome(await router.RouteAsync(context, cancellationToken), null);
        }
        catch (NoCandidateException e)
        {
            return new RouteOutcome(null, new RunError(e.Code, e.Message));
        }
    }
}
