using Sandstorm.Core.Contracts;

namespace Sandstorm.Providers.Health;

/// <summary>Live health of providers as seen from this process; read by the provider catalog and the router.</summary>
public interface IProviderHealthSource
{
    /// <summary>Providers this source tracks.</summary>
    IReadOnlyCollection<string> Providers { get; }

    /// <summary>Health of one provider; <see cref="ProviderHealth.Unknown"/> when it is not tracked.</summary>
    ProviderHealth GetHealth(string provider);

    /// <summary>Health of one provider for one tenant: also unavailable while that tenant's own circuit is open.</summary>
    ProviderHealth GetHealth(string provider, string tenantId) => GetHealth(provider);
}
