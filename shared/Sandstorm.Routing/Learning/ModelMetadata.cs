namespace Sandstorm.Routing.Learning;

/// <summary>What a stored model is: its version, the data it saw and how well it did on data it did not see.</summary>
public sealed record ModelMetadata
{
    public required string Version { get; init; }

    /// <summary>Feature layout the model was trained on (<see cref="RoutingFeatures.SchemaVersion"/>).</summary>
    public int FeatureSchema { get; init; } = RoutingFeatures.SchemaVersion;

    public required DateTimeOffset TrainedAt { get; init; }

    /// <summary>Start of the training window (oldest observation considered).</summary>
    public required DateTimeOffset WindowFrom { get; init; }

    /// <summary>End of the training window (exclusive).</summary>
    public required DateTimeOffset WindowTo { get; init; }

    public int TrainingRows { get; init; }

    public int HoldoutRows { get; init; }

    /// <summary>Holdout metrics, which also calibrate the safety margins.</summary>
    public required ModelMetrics Metrics { get; init; }

    /// <summary>Observations per candidate key in the training data: how far to trust the model over the prior.</summary>
    public IReadOnlyDictionary<string, int> CandidateCounts { get; init; } = new Dictionary<string, int>();
}

/// <summary>
/// Holdout errors of both heads, in natural-log units (0.1 ≈ 10 % off), and the safety margins derived from them:
/// the 90th percentile of (actual − predicted) in log space, so nine in ten runs land under prediction × margin.
/// </summary>
public sealed record ModelMetrics
{
    public double CostLogMae { get; init; }

    public double LatencyLogMae { get; init; }

    /// <summary>Multiplier applied to predicted cost before comparing with maxCost (≥ 1).</summary>
    public double CostMargin { get; init; } = 1;

    /// <summary>Multiplier applied to predicted latency before comparing with maxLatency and the timeout (≥ 1).</summary>
    public double LatencyMargin { get; init; } = 1;

    /// <summary>
    /// Spread of the holdout residuals per candidate and latency band (<see cref="ResidualSpreads"/>): turns the heads'
    /// log-scale point predictions into expected values and per-candidate upper quantiles.
    /// </summary>
    public IReadOnlyDictionary<string, ResidualSpread> Spreads { get; init; } = new Dictionary<string, ResidualSpread>();

    /// <summary>The figure promotion compares: the sum of both heads' errors.</summary>
    public double Score => CostLogMae + LatencyLogMae;
}
