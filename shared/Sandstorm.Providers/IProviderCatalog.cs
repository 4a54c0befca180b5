using Sandstorm.Core.Contracts;

namespace Sandstorm.Providers;

/// <summary>The providers registered in this deployment, by id.</summary>
public interface IProviderCatalog
{
    IReadOnlyList<ISandboxProvider> All { get; }

    /// <summary>The provider with this id; throws when there is none.</summary>
    ISandboxProvider Get(string provider);

    /// <summary>Live health of each provider (circuit state, latency, failures).</summary>
    ProviderHealth Health(string provider);

    /// <summary>Health of a provider as one tenant sees it (its own circuit breaker included).</summary>
    ProviderHealth Health(string provider, string tenantId) => Health(provider);
}
