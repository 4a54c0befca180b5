using Sandstorm.Core.Contracts;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Storage;

namespace Sandstorm.Routing.Reoptimization;

/// <summary>
/// The scheduled re-optimisation: retrain both heads on the recent window, compare the new model with the current one
/// (or the prior) on the most recent runs held out, promote only a better one, refresh prices and health, store a report.
/// The timer function and the local host's job call <see cref="RunAsync"/>; it is safe to call again after a failure.
/// </summary>
public sealed class ReoptimizationJob(
    IRoutingObservationSource observations,
    IModelStore store,
    RoutingModelHolder models,
    RoutingMarketState market,
    RoutingOptions options,
    TimeProvider time,
    IPriceFeed? prices = null,
    IRoutingMarketSource? marketSource = null)
{
    private const int SavingsSample = 400;
    private readonly RoutingModelTrainer _trainer = new(options.Trainer);

    public async Task<ReoptimizationReport> RunAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var from = now - options.TrainingWindow;
        var changes = await RefreshPricesAsync(now, cancellationToken);
        var healthEntries = await RefreshHealthAsync(now, cancellationToken);

        var window = await observations.GetObservationsAsync(from, now, cancellationToken);
        var current = await models.GetAsync(cancellationToken);
        var report = new ReoptimizationReport
        {
            StartedAt = now,
            WindowFrom = from,
            WindowTo = now,
            Observations = window.Count,
            CurrentVersion = current?.Metadata.Version,
            PriceChanges = changes,
            HealthEntries = healthEntries,
            Summary = "",
        };

        if (window.Count < options.MinTrainingObservations)
        {
            report = report with { Summary = $"not retrained: {window.Count} settled runs in the window, {options.MinTrainingObservations} needed" };
            await store.SaveReportAsync(report, cancellationToken);
            return report;
        }

        // Hold out the newest runs: the model will be judged on the future, so judge it on the most recent past.
        var ordered = window.OrderBy(o => o.Time).ToList();
        var split = (int)Math.Round(ordered.Count * (1 - options.HoldoutFraction));
        var training = ordered.Take(split).ToList();
        var holdout = ordered.Skip(split).ToList();
        cancellationToken.ThrowIfCancellationRequested();
        var candidate = _trainer.Train(training, holdout, from, now, now);
        var currentMetrics = _trainer.Evaluate(current, holdout);
        var candidateMetrics = candidate.Metadata.Metrics;
        var better = candidateMetrics.Score < currentMetrics.Score * (1 - options.MinImprovement);
        report = report with
        {
            CandidateVersion = candidate.Metadata.Version,
            CurrentMetrics = currentMetrics,
            CandidateMetrics = candidateMetrics,
            Promoted = better,
        };

        if (!better)
        {
            Recalibrate(current, ordered, now);
            await store.SaveAsync(new StoredModel(candidate.Metadata, candidate.ToBytes()), promote: false, cancellationToken);
            report = report with
            {
                Summary = $"kept {current?.Metadata.Version ?? "the prior"}: holdout error {candidateMetrics.Score:0.000} vs {currentMetrics.Score:0.000} (needs {options.MinImprovement:P0} better)",
            };
            await store.SaveReportAsync(report, cancellationToken);
            return report;
        }

        var promoted = candidate;
        if (options.RefitOnFullWindow)
        {
            // Same settings on all the data; keep the holdout's metrics and margins, which the refit cannot measure itself.
            var refit = _trainer.Train(ordered, [], from, now, now);
            promoted = refit.WithMetadata(refit.Metadata with
            {
                Metrics = candidateMetrics,
                HoldoutRows = holdout.Count,
            });
        }

        var savings = await ExpectedSavingsAsync(current, promoted, holdout, cancellationToken);
        await store.SaveAsync(new StoredModel(promoted.Metadata, promoted.ToBytes()), promote: true, cancellationToken);
        models.Promote(promoted);
        Recalibrate(promoted, ordered, now);
        report = report with
        {
            CandidateVersion = promoted.Metadata.Version,
            ExpectedSavingsUsdPer1000Runs = savings,
            Summary = $"promoted {promoted.Metadata.Version}: holdout error {candidateMetrics.Score:0.000} vs {currentMetrics.Score:0.000} for {current?.Metadata.Version ?? "the prior"}",
        };
        await store.SaveReportAsync(report, cancellationToken);
        return report;
    }

    /// <summary>
    /// Rebuilds the online calibration from the ledger's recent successful runs against <paramref name="model"/>: every host
    /// instance then starts from what the whole fleet saw lately, not only from the runs it placed itself.
    /// </summary>
    private void Recalibrate(RoutingModel? model, IReadOnlyList<RoutingObservation> ordered, DateTimeOffset now)
    {
        var since = now - (4 * options.CalibrationHalfLife);
        var recent = ordered.Where(o => o.Ok && o.Time >= since && o.CostUsd > 0 && o.LatencyMs > 0).ToList();
        models.Calibration.Reset();
        if (recent.Count == 0)
        {
            return;
        }

        double[]? cost = null, latency = null;
        if (model is not null)
        {
            (cost, latency) = model.PredictBatch(recent.Select(RoutingFeatures.Extract).ToList());
        }

        for (var i = 0; i < recent.Count; i++)
        {
            var o = recent[i];
            var prior = RoutingPrior.Estimate(o.Workload, o.Price, o.Health, o.Route.Region);
            var predictedCost = cost?[i] ?? prior.LogBilledSeconds;
            var predictedLatency = latency?[i] ?? prior.LogLatencyMs;
            models.Calibration.Observe(
                o.Route.Key,
                ResidualSpreads.Band(Math.Exp(predictedLatency)),
                o.Time,
                RoutingModelTrainer.CostLabel(o) - predictedCost,
                RoutingModelTrainer.LatencyLabel(o) - predictedLatency);
        }
    }

    private async Task<IReadOnlyList<PriceChange>> RefreshPricesAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (prices is null)
        {
            return [];
        }

        try
        {
            var sheets = await prices.GetPricesAsync(cancellationToken);
            return market.Update(sheets, null, now);
        }
        catch (Market.MarketSheetException)
        {
            // An invalid sheet is never applied; the one in force stays (the feed's refresher logs why).
            return [];
        }
    }

    private async Task<int> RefreshHealthAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (marketSource is null)
        {
            return 0;
        }

        var entries = await marketSource.GetHealthAsync(cancellationToken);
        market.Update(null, entries, now);
        return entries.Count;
    }

    private async Task<double?> ExpectedSavingsAsync(RoutingModel? current, RoutingModel next, IReadOnlyList<RoutingObservation> holdout, CancellationToken cancellationToken)
    {
        if (marketSource is null)
        {
            return null;
        }

        var providers = market.WithLivePrices(await marketSource.GetProvidersAsync(cancellationToken));
        var router = new LightGbmRouter(models, options, new SeededExplorationRandom(0));
        var runs = holdout.Where(o => o.Workload.Strategy == RoutingStrategy.OptimizeCost).Take(SavingsSample).ToList();
        double saved = 0;
        var counted = 0;
        foreach (var o in runs)
        {
            var context = new RoutingContext(o.RunId, "", o.Workload, providers, market.Health, o.Time);
            List<Candidate> feasible;
            try
            {
                feasible = CandidateEnumerator.Enumerate(context).Feasible;
            }
            catch (NoCandidateException)
            {
                continue;
            }

            var before = router.Score(context, feasible, current);
            var after = router.Score(context, feasible, next);
            var oldChoice = before.MinBy(s => s.ExpectedCostUsd)!.Candidate.Route.Key;
            var newBest = after.Min(s => s.ExpectedCostUsd);
            saved += after.First(s => s.Candidate.Route.Key == oldChoice).ExpectedCostUsd - newBest;
            counted++;
        }

        return counted == 0 ? null : Math.Round(saved / counted * 1000, 6);
    }
}
