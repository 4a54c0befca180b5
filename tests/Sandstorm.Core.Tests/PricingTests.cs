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
    public void TierFees_CloudRun_AddsAutopilotFee_ShieldAddsPerRunFee()
    {
        var basic = TierFees.Compute("e2b", 0.001m, SecurityTier.Basic);
        Assert.Equal(0.00005m, basic.Fees);
        var shield = TierFees.Compute("e2b", 0.001m, SecurityTier.Shield);
        Assert.Equal(0.00005m + TierFees.ShieldPerRun, shield.Fees);
        Assert.Equal(shield.Provider + shield.Fees, shield.Total);
    }

    [Fact]
    public void TierFees_EdgeRun_HasNoRoutingFee() =>
        Assert.Equal(0m, TierFees.Compute("edge", 0.001m, SecurityTier.Basic).Fees);
}
