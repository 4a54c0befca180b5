using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Routing.Reoptimization;

namespace Sandstorm.Routing.Market;

/// <summary>Reads a sheet from an https URL or a file, or the one shipped in this assembly.</summary>
public static class SheetSource
{
    /// <summary>The shipped price sheet (today's published list prices, with their sources and dates).</summary>
    public const string DefaultPriceSheet = "default-price-sheet.json";

    /// <summary>The shipped grid-intensity sheet.</summary>
    public const string DefaultGridIntensity = "default-grid-intensity.json";

    /// <summary>
    /// The text at <paramref name="source"/>: <c>https://…</c> is fetched, anything else is a file path; null or empty reads
    /// the shipped <paramref name="embedded"/> sheet. Plain http is refused: a price sheet decides where money goes.
    /// </summary>
    public static async Task<string> ReadAsync(string? source, string embedded, HttpClient? http, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(source))
        {
            var name = typeof(SheetSource).Assembly.GetManifestResourceNames().Single(n => n.EndsWith(embedded, StringComparison.Ordinal));
            await using var stream = typeof(SheetSource).Assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            return await reader.ReadToEndAsync(cancellationToken);
        }

        if (source.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            if (http is null)
            {
                throw new InvalidOperationException("an https sheet source needs an HttpClient");
            }

            return await http.GetStringAsync(new Uri(source), cancellationToken);
        }

        if (source.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            throw new MarketSheetException($"sheet source '{source}' must be https or a file path");
        }

        return await File.ReadAllTextAsync(source, cancellationToken);
    }
}

/// <summary>
/// The <see cref="IPriceFeed"/> of the operator's price sheet (<c>Routing:PriceSheetSource</c>: an https URL or a file; the
/// shipped sheet when unset). Each call reads and validates the sheet again; an invalid sheet throws <see cref="MarketSheetException"/>.
/// </summary>
public sealed class PriceSheetFeed(RoutingOptions options, HttpClient? http = null) : IPriceFeed
{
    /// <summary>The sheet, validated.</summary>
    public async Task<PriceSheetDocument> LoadAsync(CancellationToken cancellationToken) =>
        PriceSheetDocument.Parse(await SheetSource.ReadAsync(options.PriceSheetSource, SheetSource.DefaultPriceSheet, http, cancellationToken));

    public async Task<IReadOnlyDictionary<string, PriceSheet>> GetPricesAsync(CancellationToken cancellationToken) =>
        (await LoadAsync(cancellationToken)).Prices();
}

/// <summary>The grid-intensity feed (<c>Routing:GridIntensitySource</c>, same rules as the price sheet).</summary>
public sealed class GridIntensityFeed(RoutingOptions options, HttpClient? http = null)
{
    public async Task<GridIntensityDocument> LoadAsync(CancellationToken cancellationToken) =>
        GridIntensityDocument.Parse(await SheetSource.ReadAsync(options.GridIntensitySource, SheetSource.DefaultGridIntensity, http, cancellationToken));
}

/// <summary>
/// Keeps <see cref="RoutingMarketState"/> on the operator's sheets: reads the price sheet and the grid-intensity feed at start
/// and every <see cref="RoutingOptions.FeedRefreshInterval"/>, and applies a sheet only once it has validated, so a new
/// price is in force from the next decision on. A sheet that fails validation is logged and the previous one stays.
/// </summary>
public sealed partial class MarketFeedRefresher(
    PriceSheetFeed prices,
    GridIntensityFeed carbon,
    RoutingMarketState market,
    RoutingOptions options,
    TimeProvider time,
    ILogger<MarketFeedRefresher> logger) : BackgroundService
{
    /// <summary>Reads both sheets once and applies those that validate; returns (price sheet version, intensity version) in force.</summary>
    public async Task<(string? Prices, string? Carbon)> RefreshAsync(CancellationToken cancellationToken)
    {
        try
        {
            var sheet = await prices.LoadAsync(cancellationToken);
            if (sheet.Version != market.PriceSheetVersion)
            {
                var changes = market.Update(sheet.Prices(), null, time.GetUtcNow(), sheet.Version);
                LogPriceSheet(logger, sheet.Version, sheet.TakenAt, changes.Count);
            }
        }
        catch (Exception e) when (e is MarketSheetException or IOException or HttpRequestException or UnauthorizedAccessException or TaskCanceledException)
        {
            LogRejected(logger, e, "price sheet", options.PriceSheetSource ?? SheetSource.DefaultPriceSheet, market.PriceSheetVersion ?? "none");
        }

        try
        {
            var doc = await carbon.LoadAsync(cancellationToken);
            if (doc.Version != market.Carbon.Version)
            {
                market.SetCarbon(new GridIntensity(doc));
            }
        }
        catch (Exception e) when (e is MarketSheetException or IOException or HttpRequestException or UnauthorizedAccessException or TaskCanceledException)
        {
            LogRejected(logger, e, "grid-intensity sheet", options.GridIntensitySource ?? SheetSource.DefaultGridIntensity, market.Carbon.Version);
        }

        return (market.PriceSheetVersion, market.Carbon.Version);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.FeedRefreshInterval, time);
        do
        {
            await RefreshAsync(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Price sheet {Version} (taken {TakenAt}) applied: {Changes} provider price(s) changed")]
    private static partial void LogPriceSheet(ILogger logger, string version, string takenAt, int changes);

    [LoggerMessage(Level = LogLevel.Error, Message = "The {What} at {Source} was not applied; {Version} stays in force")]
    private static partial void LogRejected(ILogger logger, Exception e, string what, string source, string version);
}
