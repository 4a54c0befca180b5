using Sandstorm.Core.Contracts;
using Sandstorm.Routing.Market;

namespace Sandstorm.Routing.Reoptimization;

/// <summary>Live list prices: the operator's price sheet (<see cref="PriceSheetFeed"/>), or any other source of list prices.</summary>
public interface IPriceFeed
{
    /// <summary>Current price sheet by provider id; providers missing from the answer keep their previous price.</summary>
    Task<IReadOnlyDictionary<string, PriceSheet>> GetPricesAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The market as the router's offline jobs see it: the providers that can take runs and their health, by provider id or
/// <c>provider/region</c> (<see cref="CandidateEnumerator.HealthOf"/>). The orchestration layer implements it over the
/// providers' own catalogue and health sources (Routing does not depend on Providers); the router's decisions get the same
/// figures through <see cref="RoutingContext"/>.
/// </summary>
public interface IRoutingMarketSource
{
    /// <summary>The providers Sandstorm can place runs on (capabilities; prices are the catalogue's defaults).</summary>
    Task<IReadOnlyList<ProviderCapabilities>> GetProvidersAsync(CancellationToken cancellationToken);

    /// <summary>Recent health by provider id or <c>provider/region</c>.</summary>
    Task<IReadOnlyDictionary<string, ProviderHealth>> GetHealthAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The prices, grid intensity and health in force. Whoever builds a <see cref="RoutingContext"/> applies the prices
/// (<see cref="WithLivePrices"/>) and health; the router reads <see cref="Carbon"/> itself. Updates replace an immutable
/// snapshot, so the next decision sees them and none sees half of one.
/// </summary>
public sealed class RoutingMarketState
{
    private volatile Snapshot _snapshot = new(
        new Dictionary<string, PriceSheet>(StringComparer.OrdinalIgnoreCase), new Dictionary<string, ProviderHealth>(StringComparer.OrdinalIgnoreCase), null, null, GridIntensity.Empty);

    public IReadOnlyDictionary<string, PriceSheet> Prices => _snapshot.Prices;

    public IReadOnlyDictionary<string, ProviderHealth> Health => _snapshot.Health;

    public DateTimeOffset? RefreshedAt => _snapshot.RefreshedAt;

    /// <summary>Version of the price sheet in force (null before one was applied).</summary>
    public string? PriceSheetVersion => _snapshot.PriceSheetVersion;

    /// <summary>Grid intensity in force (<see cref="GridIntensity.Empty"/> before a feed was applied).</summary>
    public GridIntensity Carbon => _snapshot.Carbon;

    /// <summary>Providers with their live price where one is known.</summary>
    public IReadOnlyList<ProviderCapabilities> WithLivePrices(IReadOnlyList<ProviderCapabilities> providers)
    {
        var prices = _snapshot.Prices;
        return prices.Count == 0
            ? providers
            : providers.Select(p => prices.TryGetValue(p.Provider, out var live) ? p with { Price = live } : p).ToList();
    }

    /// <summary>Replaces the snapshot; returns the price changes (provider, old, new).</summary>
    public IReadOnlyList<PriceChange> Update(
        IReadOnlyDictionary<string, PriceSheet>? prices, IReadOnlyDictionary<string, ProviderHealth>? health, DateTimeOffset now, string? priceSheetVersion = null)
    {
        lock (_gate)
        {
            var old = _snapshot;
            var merged = new Dictionary<string, PriceSheet>(old.Prices, StringComparer.OrdinalIgnoreCase);
            var changes = new List<PriceChange>();
            foreach (var (provider, sheet) in prices ?? new Dictionary<string, PriceSheet>())
            {
                if (!merged.TryGetValue(provider, out var before) || before != sheet)
                {
                    changes.Add(new PriceChange(provider, before, sheet));
                }

                merged[provider] = sheet;
            }

            var newHealth = health is null ? old.Health : new Dictionary<string, ProviderHealth>(health, StringComparer.OrdinalIgnoreCase);
            _snapshot = old with { Prices = merged, Health = newHealth, RefreshedAt = now, PriceSheetVersion = priceSheetVersion ?? old.PriceSheetVersion };
            return changes;
        }
    }

    /// <summary>Replaces the grid intensity in force.</summary>
    public void SetCarbon(GridIntensity carbon)
    {
        lock (_gate)
        {
            _snapshot = _snapshot with { Carbon = carbon };
        }
    }

    private readonly Lock _gate = new();

    private sealed record Snapshot(
        IReadOnlyDictionary<string, PriceSheet> Prices, IReadOnlyDictionary<string, ProviderHealth> Health, DateTimeOffset? RefreshedAt, string? PriceSheetVersion, GridIntensity Carbon);
}

/// <summary>A list price that moved.</summary>
public sealed record PriceChange(string Provider, PriceSheet? Before, PriceSheet After);
