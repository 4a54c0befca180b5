using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sandstorm.Routing.Market;
using Sandstorm.Routing.Reoptimization;

namespace Sandstorm.Routing.Tests;

public sealed class MarketSheetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sheets-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Valid = """
        {"kind":"sandstorm.price-sheet","version":"v1","takenAt":"2026-12-07","currency":"USD",
         "providers":{"e2b":{"vcpuSecond":0.000014,"gibSecond":0.0000045,"minimumSeconds":0,"granularitySeconds":1,"source":"https://e2b.dev/pricing","takenAt":"2026-12-07"}}}
        """;

    [Fact]
    public async Task LoadAsync_ShippedSheet_CarriesTheFourCloudsWithSourcesAndDates()
    {
        var sheet = await new PriceSheetFeed(new RoutingOptions()).LoadAsync(CancellationToken.None);

        foreach (var cloud in new[] { "e2b", "daytona", "modal", "aca" })
        {
            var entry = sheet.Providers[cloud];
            Assert.False(string.IsNullOrWhiteSpace(entry.Source));
            Assert.Matches(@"^\d{4}-\d\d-\d\d$", entry.TakenAt!);
        }

        Assert.Equal(0.000014, sheet.Providers["e2b"].VcpuSecond);
        Assert.Contains("ESTIMATE", sheet.Providers["aca"].Note, StringComparison.Ordinal);
        var carbon = await new GridIntensityFeed(new RoutingOptions()).LoadAsync(CancellationToken.None);
        Assert.NotNull(new GridIntensity(carbon).GramsPerKwh("us-east-1", DateTimeOffset.UnixEpoch));
    }

    [Theory]
    [InlineData("\"version\":\"v1\",", "", "version is required")]
    [InlineData("\"takenAt\":\"2026-12-07\",\"currency\"", "\"takenAt\":\"yesterday\",\"currency\"", "takenAt must be a date")]
    [InlineData("\"vcpuSecond\":0.000014", "\"vcpuSecond\":-1", "providers.e2b.vcpuSecond must be between 0")]
    [InlineData("\"currency\":\"USD\"", "\"currency\":\"EUR\"", "currency must be USD")]
    [InlineData("\"granularitySeconds\":1,", "\"granularitySeconds\":1,\"surprise\":2,", "not valid")]
    public void Parse_InvalidSheet_NamesTheField(string from, string to, string expected)
    {
        var e = Assert.Throws<MarketSheetException>(() => PriceSheetDocument.Parse(Valid.Replace(from, to, StringComparison.Ordinal)));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RefreshAsync_NewSheetVersion_AppliedAtTheNextDecision_InvalidOneKeepsThePrevious()
    {
        var path = Path.Combine(_dir, "prices.json");
        await File.WriteAllTextAsync(path, Valid);
        var options = new RoutingOptions { PriceSheetSource = path };
        var market = new RoutingMarketState();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 10, 0, 0, TimeSpan.Zero));
        var refresher = new MarketFeedRefresher(new PriceSheetFeed(options), new GridIntensityFeed(options), market, options, time, NullLogger<MarketFeedRefresher>.Instance);

        Assert.Equal("v1", (await refresher.RefreshAsync(CancellationToken.None)).Prices);
        var decisionBefore = market.WithLivePrices(TestMarket.Provider("e2b", "firecracker", Core.Contracts.IsolationLevel.Standard, 0.000001, ["us-east"]) is var p ? [p] : []);
        Assert.Equal(0.000014, decisionBefore[0].Price.VcpuSecond);

        await File.WriteAllTextAsync(path, Valid.Replace("\"v1\"", "\"v2\"", StringComparison.Ordinal).Replace("0.000014", "0.000028", StringComparison.Ordinal));
        time.Advance(options.FeedRefreshInterval);
        Assert.Equal("v2", (await refresher.RefreshAsync(CancellationToken.None)).Prices);
        Assert.Equal(0.000028, market.WithLivePrices([p])[0].Price.VcpuSecond);

        await File.WriteAllTextAsync(path, Valid.Replace("\"v1\"", "\"v3\"", StringComparison.Ordinal).Replace("0.000014", "-5", StringComparison.Ordinal));
        Assert.Equal("v2", (await refresher.RefreshAsync(CancellationToken.None)).Prices);
        Assert.Equal(0.000028, market.Prices["e2b"].VcpuSecond);
    }
}
