using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Sandstorm.Routing;
using Sandstorm.Routing.Learning;

namespace Sandstorm.Telemetry;

/// <summary>Registers the ingestion path and routes the router's learning through it.</summary>
public static class TelemetryServiceCollectionExtensions
{
    /// <summary>
    /// Adds the append-blob log on the registered <see cref="BlobServiceClient"/> (Azurite locally, the storage account with
    /// the app's identity in Azure), the <see cref="TelemetryIngestor"/> (<see cref="ITelemetrySink"/>), and — when routing is
    /// registered — makes Settle's <see cref="IRoutingLearner"/> publish every outcome, feeds the router the other instances'
    /// outcomes, and retrains from the log (<see cref="IRoutingObservationSource"/>). Call after <c>AddSandstormRouting</c>.
    /// </summary>
    public static IServiceCollection AddSandstormTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new TelemetryOptions();
        configuration.GetSection(TelemetryOptions.Section).Bind(options);
        services.TryAddSingleton(options);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(new TelemetryWriterId($"{Environment.MachineName.ToLowerInvariant()}-{Environment.ProcessId}"));
        services.TryAddSingleton<ITelemetryLog>(sp => new AppendBlobTelemetryLog(
            sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(options.Container),
            sp.GetRequiredService<TelemetryWriterId>().Value,
            sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new TelemetryIngestor(sp.GetRequiredService<ITelemetryLog>(), options, sp.GetRequiredService<ILogger<TelemetryIngestor>>()));
        services.TryAddSingleton<ITelemetrySink>(sp => sp.GetRequiredService<TelemetryIngestor>());
        services.AddHostedService(sp => sp.GetRequiredService<TelemetryIngestor>());
        if (services.Any(d => d.ServiceType == typeof(LightGbmRouter)))
        {
            services.Replace(ServiceDescriptor.Singleton<IRoutingLearner>(sp => new PublishingRoutingLearner(
                sp.GetRequiredService<LightGbmRouter>(), sp.GetRequiredService<ITelemetrySink>(), sp.GetRequiredService<TelemetryWriterId>())));
            services.Replace(ServiceDescriptor.Singleton<IRoutingObservationSource>(sp => new TelemetryObservationSource(sp.GetRequiredService<ITelemetryLog>())));
            services.TryAddSingleton(sp => new TelemetryLearnerFeed(
                new TelemetryTail(sp.GetRequiredService<BlobServiceClient>().GetBlobContainerClient(options.Container), sp.GetRequiredService<TelemetryWriterId>().Value, sp.GetRequiredService<TimeProvider>()),
                sp.GetRequiredService<LightGbmRouter>(), options, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<TelemetryLearnerFeed>>()));
            services.AddHostedService(sp => sp.GetRequiredService<TelemetryLearnerFeed>());
        }

        return services;
    }
}
