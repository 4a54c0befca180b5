using System.Collections.Concurrent;
using Polly;
using Polly.CircuitBreaker;
using Sandstorm.Providers.Cloud;

namespace Sandstorm.Providers.Resilience;

/// <summary>
/// One circuit breaker per tenant of one provider, counting only the rejections a tenant brings on itself (429 rate
/// limits, quota): while it is open, that tenant's calls to the provider fail fast and every other tenant's still go
/// through. The provider-wide breaker counts only the provider's own failures (5xx, timeouts, unreachable), so one
/// tenant's 429s never take the provider away from the others.
/// </summary>
public sealed class TenantBreakers
{
    /// <summary>Tenants tracked at once; beyond it, tenants whose circuit is closed are forgotten (their recent history with it).</summary>
    public const int MaxTenants = 10_000;

    private readonly ConcurrentDictionary<string, Breaker> _tenants = new(StringComparer.Ordinal);
    private readonly CloudProviderOptions _options;
    private readonly TimeProvider _time;

    public TenantBreakers(CloudProviderOptions options, TimeProvider time)
    {
        _options = options;
        _time = time;
    }

    /// <summary>The tenant's breaker as a pipeline to run the provider call through.</summary>
    public ResiliencePipeline For(string tenant)
    {
        if (_tenants.TryGetValue(tenant, out var known))
        {
            return known.Pipeline;
        }

        if (_tenants.Count >= MaxTenants)
        {
            foreach (var (key, breaker) in _tenants)
            {
                if (breaker.State.CircuitState == CircuitState.Closed)
                {
                    _tenants.TryRemove(key, out _);
                }
            }
        }

        return _tenants.GetOrAdd(tenant, _ => Build()).Pipeline;
    }

    /// <summary>The state of the tenant's circuit; closed for a tenant never seen.</summary>
    public CircuitState State(string tenant) =>
        _tenants.TryGetValue(tenant, out var breaker) ? breaker.State.CircuitState : CircuitState.Closed;

    private Breaker Build()
    {
        var state = new CircuitBreakerStateProvider();
        var pipeline = new ResiliencePipelineBuilder { TimeProvider = _time }
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = _options.BreakerFailureRatio,
                MinimumThroughput = Math.Max(2, _options.BreakerMinimumThroughput),
                SamplingDuration = _options.BreakerSamplingDuration,
                BreakDuration = _options.BreakerBreakDuration,
                StateProvider = state,
                ShouldHandle = args => ValueTask.FromResult(ProviderResilience.IsTenantRejection(args.Outcome.Exception)),
            })
            .Build();
        return new Breaker(pipeline, state);
    }

    private sealed record Breaker(ResiliencePipeline Pipeline, CircuitBreakerStateProvider State);
}
