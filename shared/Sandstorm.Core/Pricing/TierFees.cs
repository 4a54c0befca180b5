using Sandstorm.Core.Contracts;

namespace Sandstorm.Core.Pricing;

/// <summary>
/// Sandstorm's own fees on top of what the provider charges:
/// Autopilot (routing) 5% of the provider cost, at least $0.000001 a run;
/// Shield $0.0002 a run; Edge runs pay the provider rate of the agent ($0.02 per core-hour) and no routing fee.
/// </summary>
public static class TierFees
{
    public const decimal AutopilotRate = 0.05m;
    public const decimal AutopilotMinimum = 0.000001m;
    public const decimal ShieldPerRun = 0.0002m;

    /// <summary>Price sheet of compute on the customer's own machines (edge agents, the local provider).</summary>
    public static PriceSheet EdgePrice { get; } = new() { VcpuSecond = 0.02 / 3600, GibSecond = 0, GranularitySeconds = 0.001 };

    public static CostBreakdown Compute(string provider, decimal providerCost, SecurityTier tier)
    {
        var fees = 0m;
        if (provider is not ("edge" or "local"))
        {
            fees += Math.Max(AutopilotMinimum, Math.Round(providerCost * AutopilotRate, 8, MidpointRounding.AwayFromZero));
        }

        if (tier == SecurityTier.Shield)
        {
            fees += ShieldPerRun;
        }

        return new CostBreakdown(providerCost, fees, providerCost + fees);
    }
}
