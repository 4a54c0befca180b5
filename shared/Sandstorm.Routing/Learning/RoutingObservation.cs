using Sandstorm.Core.Contracts;

namespace Sandstorm.Routing.Learning;

/// <summary>
/// One settled run as the ledger knows it: the inputs the router saw when it chose (workload, placement, list price,
/// provider health, time) and what happened (cost paid, end-to-end latency, success). Failed runs are kept: their cost was paid.
/// </summary>
public sealed record RoutingObservation
{
    public required string RunId { get; init; }

    /// <summary>When the route was decided (hour of day and day of week come from it).</summary>
    public required DateTimeOffset Time { get; init; }

    public required Workload Workload { get; init; }

    /// <summary>Where it ran (provider, runtime, region).</summary>
    public required RouteCandidate Route { get; init; }

    /// <summary>Isolation level the runtime gave.</summary>
    public IsolationLevel RuntimeIsolation { get; init; } = IsolationLevel.Standard;

    /// <summary>List price in force when the route was decided.</summary>
    public required PriceSheet Price { get; init; }

    /// <summary>Provider health the router saw when it decided.</summary>
    public ProviderHealth Health { get; init; } = ProviderHealth.Unknown;

    /// <summary>Provider charge in USD (without Sandstorm fees).</summary>
    public required double CostUsd { get; init; }

    /// <summary>End-to-end latency in milliseconds (provisioning to result).</summary>
    public required double LatencyMs { get; init; }

    public required bool Ok { get; init; }

    /// <summary>Cost the router predicted for this placement when it decided (calibrated), if known.</summary>
    public double? PredictedCostUsd { get; init; }

    /// <summary>Latency the router predicted for this placement when it decided (calibrated), if known.</summary>
    public double? PredictedLatencyMs { get; init; }
}

/// <summary>Settled runs to learn from. The lead's ledger implements it; <see cref="InMemoryObservationSource"/> serves tests and the benchmark.</summary>
public interface IRoutingObservationSource
{
    /// <summary>Observations decided in [<paramref name="from"/>, <paramref name="to"/>), oldest first.</summary>
    Task<IReadOnlyList<RoutingObservation>> GetObservationsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken);
}

/// <summary>A thread-safe in-process observation log.</summary>
public sealed class InMemoryObservationSource : IRoutingObservationSource
{
    private readonly List<RoutingObservation> _observations = [];
    private readonly Lock _gate = new();

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _observations.Count;
            }
        }
    }

    public void Add(RoutingObservation observation)
    {
        lock (_gate)
        {
            _observations.Add(observation);
        }
    }

    public Task<IReadOnlyList<RoutingObservation>> GetObservationsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            IReadOnlyList<RoutingObservation> window = _observations
                .Where(o => o.Time >= from && o.Time < to)
                .OrderBy(o => o.Time)
                .ToList();
            return Task.FromResult(window);
        }
    }
}
