using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Sandstorm.Providers.Local;

namespace Sandstorm.Providers;

/// <summary>Registers the provider catalog and the built-in <c>local</c> provider.</summary>
public static class ProviderServiceCollectionExtensions
{
    public static IServiceCollection AddSandstormLocalProvider(this IServiceCollection services)
    {
        services.AddSingleton<ISandboxProvider, LocalProvider>();
        services.TryAddSingleton<IProviderCatalog, ProviderCatalog>();
        return services;
    }
}
