using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly.CircuitBreaker;
using Sandstorm.Api.Batches;
using Sandstorm.Core.Observability;
using Sandstorm.Providers.Edge;
using Sandstorm.Providers.Health;
using Sandstorm.Storage.Edge;
using static Sandstorm.Core.Observability.ObservabilityNames;

namespace Sandstorm.Api.Observability;

/// <summary>
/// The control plane's observable gauges: each cloud provider's circuit breaker (from the <see cref="ProviderHealthMonitor"/>),
/// the batch queue's depth and the live edge agents by region. Created with the meter provider and disposed with it;
/// its own <see cref="Meter"/> (named <see cref="Source"/> like the static one) goes with it, so no callback outlives the
/// services it reads. A gauge whose source is not registered in this host is not created.
/// </summary>
public sealed class SandstormGauges : IDisposable
{
    /// <summary>How old a queue depth or agent count may be before a collection starts a new read.</summary>
    public static readonly TimeSpan RefreshAfter = TimeSpan.FromSeconds(15);

    private readonly Meter _meter = new(Source);

    public SandstormGauges(IServiceProvider services, TimeProvider time, ILogger<SandstormGauges> logger)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (services.GetService<ProviderHealthMonitor>() is { } health)
        {
            _meter.CreateObservableGauge(Metrics.ProviderCircuitState, () => CircuitStates(health), "{state}", "Circuit breaker of each cloud provider: 0 closed, 1 half-open, 2 open, 3 isolated");
        }

        if (services.GetService<StorageBatchQueue>() is { } queue)
        {
            var depth = new GaugeReading<int>("the batch queue depth", queue.ApproximateDepthAsync, RefreshAfter, time, logger);
            _meter.CreateObservableGauge(
                Metrics.BatchQueueDepth,
                () => depth.TryGet(out var d) ? [new Measurement<int>(d, new KeyValuePair<string, object?>(Attributes.QueueName, queue.Name))] : Array.Empty<Measurement<int>>(),
                "{message}",
                "Messages waiting in the batch queue (approximate)");
        }

        if (services.GetService<EdgeAgentStore>() is { } agents)
        {
            var timeout = services.GetService<IOptions<EdgeOptions>>()?.Value.AgentTimeout ?? new EdgeOptions().AgentTimeout;
            var live = new GaugeReading<IReadOnlyDictionary<string, int>>("the live edge agents", ct => agents.CountLiveByRegionAsync(timeout, ct), RefreshAfter, time, logger);
            _meter.CreateObservableGauge(
                Metrics.EdgeAgentsLive,
                () => live.TryGet(out var counts)
                    ? counts.Select(c => new Measurement<int>(c.Value, new KeyValuePair<string, object?>(Attributes.Region, c.Key)))
                    : [],
                "{agent}",
                "Edge agents whose last heartbeat is within the agent timeout, by region");
        }
    }

    /// <summary>The gauge's value of a breaker state: ordered by how much traffic the provider is refused.</summary>
    public static int CircuitValue(CircuitState state) => state switch
    {
        CircuitState.Closed => 0,
        CircuitState.HalfOpen => 1,
        CircuitState.Open => 2,
        CircuitState.Isolated => 3,
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    public void Dispose() => _meter.Dispose();

    private static IEnumerable<Measurement<int>> CircuitStates(ProviderHealthMonitor health)
    {
        foreach (var provider in health.Providers)
        {
            // No breaker yet: the provider's pipeline has not been built, so nothing has failed either.
            var state = health.For(provider).Breaker?.CircuitState ?? CircuitState.Closed;
            yield return new Measurement<int>(
                CircuitValue(state),
                new KeyValuePair<string, object?>(Attributes.Provider, provider),
                new KeyValuePair<string, object?>(Attributes.CircuitState, SandstormDiagnostics.TagOf(state)));
        }
    }
}
