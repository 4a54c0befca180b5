using Azure.Identity;
using Azure.Messaging.ServiceBus;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Sandstorm.Api.Batches;

/// <summary>Registers batch submission, the queue senders and (on hosts without a queue trigger) the queue listeners.</summary>
public static class BatchServiceCollectionExtensions
{
    /// <summary>
    /// With <paramref name="listen"/>, also polls the Storage batch queue and, where Service Bus is configured
    /// (<c>ConnectionStrings:ServiceBus</c>, or <c>Sandstorm:ServiceBus:FullyQualifiedNamespace</c> with the managed identity),
    /// processes its batch queue. The API sends to Service Bus when it is configured, else to the Storage queue.
    /// </summary>
    public static IServiceCollection AddSandstormBatches(this IServiceCollection services, IConfiguration configuration, bool listen)
    {
        services.AddOptions<ServiceBusOptions>().Bind(configuration.GetSection(ServiceBusOptions.Section));
        services.TryAddSingleton<BatchIntake>();
        services.TryAddSingleton<BatchService>();

        var connectionString = configuration.GetConnectionString("ServiceBus");
        var ns = configuration[$"{ServiceBusOptions.Section}:FullyQualifiedNamespace"];
        var serviceBus = !string.IsNullOrWhiteSpace(connectionString) || !string.IsNullOrWhiteSpace(ns);
        if (serviceBus)
        {
            services.TryAddSingleton(_ => string.IsNullOrWhiteSpace(connectionString)
                ? new ServiceBusClient(ns, new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = configuration["Sandstorm:Identity:ClientId"] }))
                : new ServiceBusClient(connectionString));
            services.TryAddSingleton<IBatchQueue, ServiceBusBatchQueue>();
        }
        else
        {
            services.TryAddSingleton<IBatchQueue, StorageBatchQueue>();
        }

        if (listen)
        {
            services.TryAddSingleton<StorageBatchQueueListener>();
            services.AddHostedService(sp => sp.GetRequiredService<StorageBatchQueueListener>());
            if (serviceBus)
            {
                services.AddHostedService<ServiceBusBatchProcessor>();
            }
        }

        return services;
    }
}
