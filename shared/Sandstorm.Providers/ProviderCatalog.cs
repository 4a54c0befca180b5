using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Health;

namespace Sandstorm.Providers;

/// <summary>The registered providers, and their health from every registered health source.</summary>
public sealed class ProviderCatalog : IProviderCatalog
{
    private readonly Dictionary<string, ISandboxProvider> _byName;
    private readonly IReadOnlyList<IProviderHealthSource> _health;

    public ProviderCatalog(IEnumerable<ISandboxProvider> providers, IEnumerable<IProviderHealthSource> health)
    {
        All = providers.ToList();
        _byName = All.ToDictionary(p => p.Capabilities.Provider, StringComparer.OrdinalIgnoreCase);
        _health = health.ToList();
    }

    public IReadOnlyList<ISandboxProvider> All { get; }

    public ISandboxProvider Get(string provider) =>
        _byName.TryGetValue(provider, out var p) ? p : throw new KeyNotFoundException($"provider '{provider}' is not registered");

    public ProviderHealth Health(string provider) => Health(provider, tenantId: null);

    public ProviderHealth Health(string provider, string? tenantId)
    {
        foreach (var source in _health)
        {
            if (source.Providers.Contains(provider, StringComparer.OrdinalIgnoreCase))
            {
                return tenantId is null ? source.GetHealth(provider) : source.GetHealth(provider, tenantId);
            }
        }

        return ProviderHealth.Unknown;
    }
}
