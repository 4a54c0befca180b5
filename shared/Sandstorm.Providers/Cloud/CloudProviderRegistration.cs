using Azure.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Sandstorm.Providers.Aca;
using Sandstorm.Providers.Daytona;
using Sandstorm.Providers.E2B;
using Sandstorm.Providers.Health;
using Sandstorm.Providers.Modal;
using Sandstorm.Providers.Resilience;

namespace Sandstorm.Providers.Cloud;

/// <summary>DI registration of the sandbox-cloud adapters.</summary>
public static class CloudProviderRegistration
{
    /// <summary>Key of the <see cref="TokenCredential"/> the ACA adapter uses; register one under it to override the host's credential.</summary>
    public const string AcaCredentialKey = "sandstorm-aca";

    /// <summary>
    /// Registers each sandbox cloud that is configured under <c>Sandstorm:Providers:&lt;Name&gt;</c> (E2B, Daytona, Modal, Aca)
    /// as an <see cref="ISandboxProvider"/>, with its named HttpClient and keyed resilience pipeline, plus
    /// <see cref="IProviderHealthSource"/>. A cloud without credentials (or with <c>Enabled=false</c>) is not registered.
    /// </summary>
    public static IServiceCollection AddSandstormCloudProviders(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ProviderHealthMonitor>();
        services.TryAddSingleton<IProviderHealthSource>(sp => sp.GetRequiredService<ProviderHealthMonitor>());

        var e2b = Bind<E2BOptions>(configuration, E2BOptions.Section);
        if (e2b.IsConfigured)
        {
            services.Configure<E2BOptions>(configuration.GetSection(E2BOptions.Section));
            AddHttpClient(services, E2BProvider.HttpClientName);
            services.AddProviderPipeline(E2BProvider.Id, e2b);
            services.AddSingleton<E2BProvider>();
            services.AddSingleton<ISandboxProvider>(sp => sp.GetRequiredService<E2BProvider>());
        }

        var daytona = Bind<DaytonaOptions>(configuration, DaytonaOptions.Section);
        if (daytona.IsConfigured)
        {
            services.Configure<DaytonaOptions>(configuration.GetSection(DaytonaOptions.Section));
            AddHttpClient(services, DaytonaProvider.HttpClientName);
            services.AddProviderPipeline(DaytonaProvider.Id, daytona);
            services.AddSingleton<DaytonaProvider>();
            services.AddSingleton<ISandboxProvider>(sp => sp.GetRequiredService<DaytonaProvider>());
        }

        var modal = Bind<ModalOptions>(configuration, ModalOptions.Section);
        if (modal.IsConfigured)
        {
            services.Configure<ModalOptions>(configuration.GetSection(ModalOptions.Section));
            services.AddProviderPipeline(ModalProvider.Id, modal);
            services.AddSingleton<ModalProvider>();
            services.AddSingleton<ISandboxProvider>(sp => sp.GetRequiredService<ModalProvider>());
        }

        var aca = Bind<AcaOptions>(configuration, AcaOptions.Section);
        if (aca.IsConfigured)
        {
            services.Configure<AcaOptions>(configuration.GetSection(AcaOptions.Section));
            AddHttpClient(services, AcaProvider.HttpClientName);
            services.AddProviderPipeline(AcaProvider.Id, aca);
            // Identity, not keys: the host's one credential (a managed identity in Azure, the developer's login locally).
            services.TryAddKeyedSingleton<TokenCredential>(AcaCredentialKey, (sp, _) => sp.GetRequiredService<TokenCredential>());
            services.AddSingleton<AcaProvider>();
            services.AddSingleton<ISandboxProvider>(sp => sp.GetRequiredService<AcaProvider>());
        }

        return services;
    }

    private static T Bind<T>(IConfiguration configuration, string section)
        where T : new()
    {
        var options = new T();
        configuration.GetSection(section).Bind(options);
        return options;
    }

    private static void AddHttpClient(IServiceCollection services, string name) =>
        services.AddHttpClient(name, client =>
        {
            // Per-call deadlines come from the resilience pipeline and the run's timeout; a global one would cut long streams.
            client.Timeout = Timeout.InfiniteTimeSpan;
        });
}
