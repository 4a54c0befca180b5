using Sandstorm.Routing.Learning;

namespace Sandstorm.Routing;

/// <summary>Settings of the ML router and its re-optimisation (configuration section <c>Routing</c>).</summary>
public sealed class RoutingOptions
{
    public const string Section = "Routing";

    /// <summary>Share of decisions that try a near-best alternative instead of the best, so the models keep learning about it.</summary>
    public double ExplorationRate { get; set; } = 0.03;

    /// <summary>Exploration only considers candidates whose objective is within this fraction of the best one's.</summary>
    public double ExplorationSlack { get; set; } = 0.25;

    /// <summary>
    /// Exploration only on runs whose best candidate is predicted to finish within this: what a try teaches about a
    /// candidate carries over to long runs (the calibration is relative), but a wrong try on a 3-minute job costs minutes.
    /// </summary>
    public double ExplorationMaxLatencyMs { get; set; } = 30_000;

    /// <summary>Seed of the exploration random source; null seeds from the clock (production), a value replays exactly (tests, benchmark).</summary>
    public int? Seed { get; set; }

    /// <summary>Safety margin on both predictions while only the prior is available (it has no residuals to calibrate from).</summary>
    public double PriorMargin { get; set; } = 1.25;

    /// <summary>
    /// Constraints are checked against each candidate's upper quantile exp(μ + z·σ), σ its own residual spread
    /// (<see cref="Learning.ResidualSpreads"/>); 1.28 ≈ the 90th percentile.
    /// </summary>
    public double SafetyQuantileZ { get; set; } = 1.2816;

    /// <summary>Half-life of the online residual calibration: how fast a slow spell or a brownout is forgotten once it stops showing.</summary>
    public TimeSpan CalibrationHalfLife { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Pseudo-runs of zero residual the calibration starts from, so a couple of unlucky runs barely move it.</summary>
    public double CalibrationShrinkage { get; set; } = 4;

    /// <summary>How far back re-optimisation reads settled runs.</summary>
    public TimeSpan TrainingWindow { get; set; } = TimeSpan.FromDays(14);

    /// <summary>Below this many settled runs in the window the router stays on the prior.</summary>
    public int MinTrainingObservations { get; set; } = 200;

    /// <summary>Most recent share of the window held out to compare the candidate model with the current one.</summary>
    public double HoldoutFraction { get; set; } = 0.2;

    /// <summary>A candidate model is promoted only if its holdout error is lower than the current one's by this fraction.</summary>
    public double MinImprovement { get; set; } = 0.01;

    /// <summary>After a win on the holdout, refit on the whole window so the newest runs are learnt too.</summary>
    public bool RefitOnFullWindow { get; set; } = true;

    public TrainerSettings Trainer { get; set; } = new();

    /// <summary>Blob service URI of the model store (managed identity); empty with no connection string = in-memory store.</summary>
    public string? ModelStoreServiceUri { get; set; }

    /// <summary>Connection string of the model store (Azurite locally).</summary>
    public string? ModelStoreConnectionString { get; set; }

    public string ModelContainer { get; set; } = "models";

    /// <summary>
    /// The operator's price sheet: an https URL or a file path (docs/routing.md, "Price sheet"); unset = the sheet shipped
    /// with this version. Read at start and every <see cref="FeedRefreshInterval"/>; applied from the next decision on.
    /// </summary>
    public string? PriceSheetSource { get; set; }

    /// <summary>The per-region hourly grid-intensity feed, in the same form and with the same rules as the price sheet.</summary>
    public string? GridIntensitySource { get; set; }

    /// <summary>How often the price sheet and the grid-intensity feed are read again.</summary>
    public TimeSpan FeedRefreshInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Autopilot's baseline provider for every tenant (the one they would otherwise have used); unset = the cloud provider
    /// with the lowest list price for the request's resources among those that can run it.
    /// </summary>
    public string? BaselineProvider { get; set; }

    /// <summary>Per-tenant baseline providers (tenant id → provider id), over <see cref="BaselineProvider"/>.</summary>
    public Dictionary<string, string> TenantBaselineProviders { get; set; } = new(StringComparer.Ordinal);
}
