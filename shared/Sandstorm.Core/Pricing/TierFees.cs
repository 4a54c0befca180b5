using Sandstorm.Core.Contracts;

namespace Sandstorm.Core.Pricing;

/// <summary>
/// Sandstorm's own fees on top of what the provider charges (docs/routing.md, "Billing"):
/// <list type="bullet">
/// <item>Autopilot (routing): 8% of the savings it found on a cloud run — the baseline (the predicted price of the same request
/// on the single provider the tenant would otherwise have used, <see cref="RouteDecision.Baseline"/>) minus what the run cost —
/// never negative, and nothing when there is no baseline.</item>
/// <item>Shield: $0.002 per second of monitored execution, only when monitoring really covered the run
/// (<see cref="ShieldCoverage"/>); a Shield run without coverage pays no Shield fee.</item>
/// <item>Edge agents and the local provider: the compute rate of <see cref="EdgePrice"/> ($0.02 per core-hour) is the
/// provider charge; no Autopilot fee.</item>
/// </list>
/// </summary>
public static class TierFees
{
    /// <summary>Share of the savings Autopilot charges.</summary>
    public const decimal AutopilotShareOfSavings = 0.08m;

    /// <summary>Shield's price per second of monitored execution (USD).</summary>
    public const decimal ShieldPerMonitoredSecond = 0.002m;

    /// <summary>Price sheet of compute on the customer's own machines (edge agents, the local provider).</summary>
    public static PriceSheet EdgePrice { get; } = new() { VcpuSecond = 0.02 / 3600, GibSecond = 0, GranularitySeconds = 0.001 };

    /// <summary>True for providers that run on the customer's own machines (no Autopilot fee).</summary>
    public static bool IsOwnCompute(string provider) => provider is "edge" or "local";

    /// <summary>The fees of one run; a pure function of its inputs, so a retried settle computes the same figures.</summary>
    public static FeeBreakdown Compute(FeeInput input)
    {
        decimal? baseline = null;
        var savings = 0m;
        var autopilot = 0m;
        if (!IsOwnCompute(input.Provider) && input.BaselineCost is { } b && b >= 0)
        {
            baseline = Round(b);
            savings = Math.Max(0m, baseline.Value - input.ProviderCost);
            autopilot = Round(savings * AutopilotShareOfSavings);
        }

        var shield = input.Tier == SecurityTier.Shield && input.Shield is { MonitoredSeconds: > 0 } coverage
            ? Round((decimal)coverage.MonitoredSeconds * ShieldPerMonitoredSecond)
            : 0m;
        return new FeeBreakdown(input.ProviderCost, autopilot, shield, baseline, savings);
    }

    private static decimal Round(decimal usd) => Math.Round(usd, 8, MidpointRounding.AwayFromZero);
}

/// <summary>What the fees of a run depend on.</summary>
public sealed record FeeInput(string Provider, decimal ProviderCost, SecurityTier Tier)
{
    /// <summary>Predicted cost of the request on the tenant's baseline provider (USD); null = no baseline, no Autopilot fee.</summary>
    public decimal? BaselineCost { get; init; }

    /// <summary>Shield's monitoring of the run; null = no real coverage (no Shield fee), the default until Shield reports it.</summary>
    public ShieldCoverage? Shield { get; init; }
}

/// <summary>Monitoring that really covered a run: how many seconds of its execution Shield watched.</summary>
public sealed record ShieldCoverage(double MonitoredSeconds);

/// <summary>A run's charges: provider, each tier's fee, and Autopilot's baseline and savings (USD).</summary>
public sealed record FeeBreakdown(decimal ProviderCost, decimal AutopilotFee, decimal ShieldFee, decimal? BaselineCost, decimal Savings)
{
    public decimal Fees => AutopilotFee + ShieldFee;

    public decimal Total => ProviderCost + Fees;

    /// <summary>The run result's cost summary.</summary>
    public CostBreakdown ToCost() => new(ProviderCost, Fees, Total);
}
