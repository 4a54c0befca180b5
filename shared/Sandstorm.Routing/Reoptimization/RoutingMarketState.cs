using Sandstorm.Core.Contracts;

namespace Sandstorm.Routing.Reoptimization;

/// <summary>Live list prices, fetched from each provider's price page or API (implemented per provider by the lead).</summary>
public interface IPriceFeed
{
    /// <summary>Current price sheet by provider id; providers missing from the answer keep their previous price.</summary>
    Task<IReadOnlyDictionary<string, PriceSheet>> GetPricesAsync(CancellationToken cancellationToken);
}

/// <summary>Recent health by provider id or <c>provider/region</c> (see <see cref="CandidateEnumerator.HealthOf"/>).</summary>
public interface IProviderHealthSource
{
    Task<IReadOnlyDictionary<string, ProviderHealth>> GetHealthAsync(CancellationToken cancellationToken);
}

/// <summary>The providers Sandstorm can place runs on (capabilities; prices here are the catalogue's defaults).</summary>
public interface IProviderCatalog
{
    Task<IReadOnlyList<ProviderCapabilities>> GetProvidersAsync(CancellationToken cancellationToken);
}

/// <summary>
/// The prices and health the last re-optimisation fetched. Whoever builds a <see cref="RoutingContext"/> applies them
/// (<see cref="WithLivePrices"/>, <see cref="Health"/>) so decisions see live figures without fetching per run.
/// </summary>
public sealed class RoutingMarketState
{
    private volatile Snapshot _snapshot = new(new Dictionary<string, PriceSheet>(StringComparer.OrdinalIgnoreCase), new Dictionary<string, ProviderHealth>(StringComparer.OrdinalIgnoreCase), null);

    public IReadOnlyDictionary<string, PriceSheet> Prices => _snapshot.Prices;

    public IReadOnlyDictionary<string, ProviderHealth> Health => _snapshot.Health;

    public DateTimeOffset? RefreshedAt => _snapshot.RefreshedAt;

    /// <summary>Providers with their live price where one is known.</summary>
    public IReadOnlyList<ProviderCapabilities> WithLivePrices(IReadOnlyList<ProviderCapabilities> providers)
    {
        var prices = _snapshot.Prices;
        return prices.Count == 0
            ? providers
            : providers.Select(p => prices.TryGetValue(p.Provider, out var live) ? p with { Price = live } : p).ToList();
    }

    /// <summary>Replaces the snapshot; returns the price changes (provider, old, new).</summary>
    public IReadOnlyList<PriceChange> Update(IReadOnlyDictionary<string, PriceSheet>? prices, IReadOnlyDictionary<string, ProviderHealth>? health, DateTimeOffset now)
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
        _snapshot = new Snapshot(merged, newHealth, now);
        return changes;
    }

    private sealed record Snapshot(IReadOnlyDictionary<string, PriceSheet> Prices, IReadOnlyDictionary<string, ProviderHealth> Health, DateTimeOffset? RefreshedAt);
}

/// <summary>A list price that moved.</summary>
public sealed record PriceChange(string Provider, PriceSheet? Before, PriceSheet After);
