using Azure.Core;
using Azure.Identity;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Sandstorm.Api.Batches;
using Sandstorm.Api.Edge;
using Sandstorm.Api.Mcp;
using Sandstorm.Api.OpenApi;
using Sandstorm.Api.Observability;
using Sandstorm.Orchestrations;
using Sandstorm.Providers;
using Sandstorm.Providers.Cloud;
using Sandstorm.Routing;
using Sandstorm.Security;
using Sandstorm.Storage;
using Sandstorm.Telemetry;

namespace Sandstorm.Api;

/// <summary>
/// The control plane's one composition root, called by every host. Each decision that differs between hosts is made here
/// from the <see cref="HostProfile"/>: whether tenant code runs on this machine, how batches travel (sender and
/// consumer together), which background loops run in-process, and the re-optimisation schedule.
/// </summary>
public static class ControlPlaneComposition
{
    public static IServiceCollection AddSandstormControlPlane(this IServiceCollection services, IConfiguration configuration, HostProfile host)
    {
        ArgumentNullException.ThrowIfNull(host);
        services.AddSingleton(host);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSandstormIdentity(configuration);
        services.AddSandstormObservability(configuration, host);
        services.AddSandstormStorage(configuration);
        services.AddSandstormSecurity(configuration);

        // Where code runs: the clouds that are configured, edge agents, and this machine only if the host says so.
        services.AddSandstormCloudProviders(configuration);
        host.LocalExecution?.Invoke(services, configuration);
        services.AddSandstormEdge(configuration);
        services.TryAddSingleton<IProviderCatalog, ProviderCatalog>();

        services.AddSandstormRouting(configuration);
        services.AddSandstormTelemetry(configuration);
        services.AddSandstormOrchestrations();
        services.AddSandstormApi();
        if (host.RoutesEndpoints)
        {
            services.AddSandstormMcp();
            services.AddSandstormApiDocument();
        }

        services.AddSandstormBatches(configuration, host);

        var schedule = ReoptimizationSchedule.From(configuration);
        services.AddSingleton(schedule);
        if (host.RunsLoops)
        {
            services.AddSandstormEdgeSweeper();
            services.AddHostedService<ReoptimizationService>();
            services.AddHostedService<Sandboxes.SandboxReaperService>();
        }
        else if (schedule.Cron is null)
        {
            throw new InvalidOperationException($"{ReoptimizationSchedule.Key} cannot be 'off' on {host.Name}: its timer trigger needs a schedule");
        }

        return services;
    }

    /// <summary>
    /// One <see cref="TokenCredential"/> for every Azure client (storage, Service Bus, Key Vault, ACA, the model store): the
    /// user-assigned managed identity named by <c>Sandstorm:Identity:ClientId</c> in Azure, developer credentials elsewhere.
    /// </summary>
    public static IServiceCollection AddSandstormIdentity(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton<TokenCredential>(_ => new DefaultAzureCredential(new DefaultAzureCredentialOptions
        {
            ManagedIdentityClientId = configuration[IdentityClientIdKey] is { Length: > 0 } id ? id : null,
        }));
        return services;
    }

    /// <summary>Configuration key of the user-assigned identity's client id.</summary>
    public const string IdentityClientIdKey = "Sandstorm:Identity:ClientId";
}
