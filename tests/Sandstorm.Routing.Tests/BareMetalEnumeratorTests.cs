using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;

namespace Sandstorm.Routing.Tests;

public sealed class BareMetalEnumeratorTests
{
    private static readonly EdgeBootImage Booted = new("registry.example/my-ai-os:v1.0", "sha256:" + new string('a', 64));

    private static ProviderCapabilities Edge(params EdgeBootImage[] images) =>
        TestMarket.Provider("edge", "bwrap", IsolationLevel.Standard, 0.00001, ["default"]) with { BootImages = images };

    [Theory]
    [InlineData("registry.example/my-ai-os:v1.0")]
    [InlineData("registry.example/my-ai-os:v1.0@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    public void Enumerate_BareMetal_KeepsOnlyTheProviderBootedFromTheImage(string reference)
    {
        ProviderCapabilities[] providers = [.. TestMarket.TwoProviders(), Edge(Booted)];

        var (feasible, rejected) = CandidateEnumerator.Enumerate(TestMarket.Context(TestMarket.Workload() with { BootcImage = reference }, providers));

        Assert.All(feasible, c => Assert.Equal("edge", c.Route.Provider));
        Assert.NotEmpty(feasible);
        Assert.All(rejected.Where(r => r.Provider != "edge"), r => Assert.StartsWith("not booted from bootcImage", r.Rejected, StringComparison.Ordinal));
    }

    [Fact]
    public void Enumerate_BareMetalPinnedToOtherDigest_NoCandidateNamingImageAndWhatRuns()
    {
        var wanted = "registry.example/my-ai-os:v1.0@sha256:" + new string('b', 64);
        ProviderCapabilities[] providers = [.. TestMarket.TwoProviders(), Edge(Booted)];

        var e = Assert.Throws<NoCandidateException>(() =>
            CandidateEnumerator.Enumerate(TestMarket.Context(TestMarket.Workload() with { BootcImage = wanted }, providers)));

        Assert.Equal(ErrorCodes.NoCandidate, e.Code);
        Assert.Contains($"bootcImage '{wanted}'", e.Message, StringComparison.Ordinal);
        Assert.Contains($"{Booted.Name}@{Booted.Digest}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Enumerate_BareMetalWithoutAnyBootedAgent_NoCandidate()
    {
        var e = Assert.Throws<NoCandidateException>(() =>
            CandidateEnumerator.Enumerate(TestMarket.Context(TestMarket.Workload() with { BootcImage = Booted.Name }, [.. TestMarket.TwoProviders(), Edge()])));

        Assert.Equal(ErrorCodes.NoCandidate, e.Code);
        Assert.Contains("no live agent reports a boot image", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Enumerate_NotBareMetal_IgnoresBootImages()
    {
        var (feasible, _) = CandidateEnumerator.Enumerate(TestMarket.Context(TestMarket.Workload(), [.. TestMarket.TwoProviders(), Edge()]));

        Assert.Contains(feasible, c => c.Route.Provider != "edge");
    }

    [Theory]
    [InlineData("registry.example/my-ai-os:v1.0", true)]
    [InlineData("registry.example/my-ai-os:v2.0", false)]
    [InlineData("registry.example/my-ai-os:v1.0@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true)]
    [InlineData("registry.example/my-ai-os:v1.0@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", false)]
    public void Matches_NameAndPinnedDigest(string reference, bool matches)
    {
        Assert.Equal(matches, Deployments.Matches(reference, Booted));
        Assert.False(Deployments.Matches(reference, null));
    }
}
