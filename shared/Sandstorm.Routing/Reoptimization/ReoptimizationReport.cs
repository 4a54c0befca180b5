using Sandstorm.Routing.Learning;

namespace Sandstorm.Routing.Reoptimization;

/// <summary>What one scheduled re-optimisation did: the models compared, whether the new one was promoted, prices and health refreshed, expected savings.</summary>
public sealed record ReoptimizationReport
{
    public required DateTimeOffset StartedAt { get; init; }

    public required DateTimeOffset WindowFrom { get; init; }

    public required DateTimeOffset WindowTo { get; init; }

    public int Observations { get; init; }

    /// <summary>Version in use before the run (null = prior).</summary>
    public string? CurrentVersion { get; init; }

    /// <summary>Version trained in this run (null when there was too little data).</summary>
    public string? CandidateVersion { get; init; }

    /// <summary>Holdout metrics of the model in use before the run (the prior's when there was none).</summary>
    public ModelMetrics? CurrentMetrics { get; init; }

    public ModelMetrics? CandidateMetrics { get; init; }

    public bool Promoted { get; init; }

    /// <summary>One line on why it was or was not promoted.</summary>
    public required string Summary { get; init; }

    public IReadOnlyList<PriceChange> PriceChanges { get; init; } = [];

    /// <summary>Providers (or provider/region entries) whose health was refreshed.</summary>
    public int HealthEntries { get; init; }

    /// <summary>
    /// Expected saving per 1000 runs like the holdout's, by the new model's own estimate: the cost of the candidate the
    /// previous model would choose minus that of the one the new model chooses (cost-optimised runs; null without a catalogue).
    /// </summary>
    public double? ExpectedSavingsUsdPer1000Runs { get; init; }
}
