using Microsoft.ML;
using Microsoft.ML.Trainers.LightGbm;

namespace Sandstorm.Routing.Learning;

/// <summary>LightGBM settings for both heads. Small trees and one thread: the data is small and the cores are shared.</summary>
public sealed record TrainerSettings
{
    public int Iterations { get; init; } = 150;

    public double LearningRate { get; init; } = 0.1;

    public int Leaves { get; init; } = 15;

    /// <summary>Large leaves: with few runs per region, small leaves split on region hashes and rank regions by luck.</summary>
    public int MinimumExamplesPerLeaf { get; init; } = 30;

    /// <summary>One thread keeps training deterministic for a seed and leaves the other core to serving.</summary>
    public int Threads { get; init; } = 1;

    public int Seed { get; init; } = 17;

    /// <summary>
    /// k in the prior blend n / (n + k); 0 = trust the trees once a model exists. The prior knows nothing of a run's
    /// length (it guesses seconds for a 3-minute batch job), so blending it in made rarely-used candidates look fast and
    /// cheap for long runs; the trees place an unseen candidate with similar ones, which is the better guess.
    /// </summary>
    public int PriorWeight { get; init; }
}

/// <summary>Fits the cost and latency heads on settled runs and measures a model (or the prior) on a holdout.</summary>
public sealed class RoutingModelTrainer(TrainerSettings settings)
{
    public TrainerSettings Settings { get; } = settings;

    /// <summary>Trains both heads; <paramref name="holdout"/> (may be empty) sets the metrics and the safety margins.</summary>
    public RoutingModel Train(
        IReadOnlyList<RoutingObservation> training,
        IReadOnlyList<RoutingObservation> holdout,
        DateTimeOffset windowFrom,
        DateTimeOffset windowTo,
        DateTimeOffset trainedAt)
    {
        ArgumentOutOfRangeException.ThrowIfZero(training.Count);
        var ml = new MLContext(Settings.Seed);
        var features = training.Select(RoutingFeatures.Extract).ToList();
        var costRows = new List<FeatureRow>(training.Count);
        var latencyRows = new List<FeatureRow>(training.Count);
        for (var i = 0; i < training.Count; i++)
        {
            costRows.Add(new FeatureRow { Features = features[i], Label = (float)CostLabel(training[i]) });
            latencyRows.Add(new FeatureRow { Features = features[i], Label = (float)LatencyLabel(training[i]) });
        }

        var costData = ml.Data.LoadFromEnumerable(costRows);
        var cost = Trainer(ml).Fit(costData);
        var latency = Trainer(ml).Fit(ml.Data.LoadFromEnumerable(latencyRows));
        var counts = training
            .GroupBy(o => o.Route.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var metadata = new ModelMetadata
        {
            Version = $"{trainedAt.UtcDateTime:yyyyMMdd'T'HHmmss}-{training.Count}",
            TrainedAt = trainedAt,
            WindowFrom = windowFrom,
            WindowTo = windowTo,
            TrainingRows = training.Count,
            HoldoutRows = holdout.Count,
            Metrics = new ModelMetrics(),
            CandidateCounts = counts,
        };
        var model = new RoutingModel(ml, cost, latency, costData.Schema, metadata);
        if (holdout.Count == 0)
        {
            return model;
        }

        return model.WithMetadata(metadata with { Metrics = Evaluate(model, holdout) });
    }

    /// <summary>Errors and margins of a model — or of the prior alone when <paramref name="model"/> is null — on settled runs.</summary>
    public ModelMetrics Evaluate(RoutingModel? model, IReadOnlyList<RoutingObservation> holdout)
    {
        if (holdout.Count == 0)
        {
            return new ModelMetrics();
        }

        double[]? cost = null, latency = null;
        if (model is not null)
        {
            (cost, latency) = model.PredictBatch(holdout.Select(RoutingFeatures.Extract).ToList());
        }

        var costResiduals = new double[holdout.Count];
        var latencyResiduals = new double[holdout.Count];
        var spreads = new List<(string, int, double, double)>(holdout.Count);
        for (var i = 0; i < holdout.Count; i++)
        {
            var o = holdout[i];
            var prior = RoutingPrior.Estimate(o.Workload, o.Price, o.Health, o.Route.Region);
            var n = model?.Metadata.CandidateCounts.GetValueOrDefault(o.Route.Key) ?? 0;
            var predictedCost = cost is null ? prior.LogBilledSeconds : RoutingModel.Blend(cost[i], prior.LogBilledSeconds, n, Settings.PriorWeight);
            var predictedLatency = latency is null ? prior.LogLatencyMs : RoutingModel.Blend(latency[i], prior.LogLatencyMs, n, Settings.PriorWeight);
            costResiduals[i] = CostLabel(o) - predictedCost;
            latencyResiduals[i] = LatencyLabel(o) - predictedLatency;
            if (o.Ok)
            {
                // Failed runs are partial (cut short, killed): their scatter is the failure rate's business, not the spread's.
                spreads.Add((o.Route.Key, ResidualSpreads.Band(Math.Exp(predictedLatency)), costResiduals[i], latencyResiduals[i]));
            }
        }

        return new ModelMetrics
        {
            CostLogMae = costResiduals.Average(Math.Abs),
            LatencyLogMae = latencyResiduals.Average(Math.Abs),
            CostMargin = Margin(costResiduals),
            LatencyMargin = Margin(latencyResiduals),
            Spreads = ResidualSpreads.Compute(spreads),
        };
    }

    /// <summary>Cost label: log of the seconds billed at list price (cost ÷ price per second of the requested resources).</summary>
    public static double CostLabel(RoutingObservation o)
    {
        var perSecond = RoutingFeatures.PricePerSecond(o.Price, o.Workload);
        return perSecond > 0 ? Math.Log(Math.Max(o.CostUsd, 1e-9) / perSecond) : Math.Log(Math.Max(o.LatencyMs, 1) / 1000);
    }

    /// <summary>Latency label: log milliseconds (latencies span three orders of magnitude; errors are relative).</summary>
    public static double LatencyLabel(RoutingObservation o) => Math.Log(Math.Max(o.LatencyMs, 1));

    /// <summary>exp of the 90th percentile of the residuals, clamped to [1, 4]: a margin, never a discount.</summary>
    private static double Margin(double[] residuals)
    {
        var sorted = residuals.Order().ToArray();
        var q90 = sorted[Math.Min(sorted.Length - 1, (int)Math.Floor(0.9 * sorted.Length))];
        return Math.Clamp(Math.Exp(q90), 1, 4);
    }

    private LightGbmRegressionTrainer Trainer(MLContext ml) => ml.Regression.Trainers.LightGbm(new LightGbmRegressionTrainer.Options
    {
        LabelColumnName = nameof(FeatureRow.Label),
        FeatureColumnName = nameof(FeatureRow.Features),
        NumberOfIterations = Settings.Iterations,
        LearningRate = Settings.LearningRate,
        NumberOfLeaves = Settings.Leaves,
        MinimumExampleCountPerLeaf = Settings.MinimumExamplesPerLeaf,
        NumberOfThreads = Settings.Threads,
        Seed = Settings.Seed,
    });
}
