using Sandstorm.Core.Contracts;
using Sandstorm.Core.Pricing;

namespace Sandstorm.Core.Tests;

public sealed class PricingTests
{
    [Fact]
    public void CostFor_PerSecondGranularity_RoundsUp()
    {
        var e2b = new PriceSheet { VcpuSecond = 0.000014, GibSecond = 0.0000045, GranularitySeconds = 1 };
        // 1.2 s billed as 2 s of 2 vCPU + 1 GiB.
        Assert.Equal(0.000065m, e2b.CostFor(cpu: 2, memoryMiB: 1024, seconds: 1.2));
    }

    [Fact]
    public void CostFor_Minimum_IsBilledForShortRuns()
    {
        var sheet = new PriceSheet { VcpuSecond = 0.001, GibSecond = 0, MinimumSeconds = 60, GranularitySeconds = 1 };
        Assert.Equal(0.06m, sheet.CostFor(1, 512, 0.1));
    }

    [Fact]
    public void Compute_CloudRunCheaperThanBaseline_ChargesEightPercentOfTheSavings()
    {
        var fees = TierFees.Compute(new FeeInput("modal", 0.006m, SecurityTier.Basic) { BaselineCost = 0.010m });

        Assert.Equal(0.004m, fees.Savings);
        Assert.Equal(0.00032m, fees.AutopilotFee);
        Assert.Equal(0m, fees.ShieldFee);
        Assert.Equal(0.00632m, fees.Total);
    }

    [Fact]
    public void Compute_RunDearerThanBaseline_ChargesNothingNeverNegative()
    {
        var fees = TierFees.Compute(new FeeInput("modal", 0.012m, SecurityTier.Basic) { BaselineCost = 0.010m });

        Assert.Equal(0m, fees.Savings);
        Assert.Equal(0m, fees.AutopilotFee);
        Assert.Equal(0.012m, fees.Total);
    }

    [Fact]
    public void Compute_NoBaseline_NoAutopilotFee() =>
        Assert.Equal(0m, TierFees.Compute(new FeeInput("e2b", 0.001m, SecurityTier.Basic)).Fees);

    [Fact]
    public void Compute_ShieldWithCoverage_ChargesPerMonitoredSecond()
    {
        var fees = TierFees.Compute(new FeeInput("e2b", 0.001m, SecurityTier.Shield) { Shield = new ShieldCoverage(12.5) });

        Assert.Equal(0.025m, fees.ShieldFee);
    }

    [Fact]
    public void Compute_ShieldWithoutCoverage_NoShieldFee() =>
        Assert.Equal(0m, TierFees.Compute(new FeeInput("e2b", 0.001m, SecurityTier.Shield)).ShieldFee);

    [Fact]
    public void Compute_EdgeRun_HasNoAutopilotFeeEvenBelowBaseline() =>
        Assert.Equal(0m, TierFees.Compute(new FeeInput("edge", 0.001m, SecurityTier.Basic) { BaselineCost = 1m }).Fees);
}
