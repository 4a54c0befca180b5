using Azure.Core;
using Azure.Messaging.ServiceBus;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Sandstorm.Api.Batches;

/// <summary>Registers batch submission with its sender and consumer chosen together (<see cref="BatchTransport"/>).</summary>
public static class BatchServiceCollectionExtensions
{
    public static IServiceCollection AddSandstormBatches(this IServiceCollection services, IConfiguration configuration, HostProfile host)
    {
        var transport = BatchTransport.For(host, configuration);
        services.AddSingleton(transport);
        services.AddOptions<ServiceBusOptions>().Bind(configuration.GetSection(ServiceBusOptions.Section));
        services.TryAddSingleton<BatchIntake>();
        services.TryAddSingleton<TenantRateLimiter>();
        services.TryAddSingleton<BatchService>();
        services.TryAddSingleton<StorageBatchQueue>();

        if (transport.Consumer == BatchTransport.InProcessListener)
        {
            services.TryAddSingleton<StorageBatchQueueListener>();
            services.AddHostedService(sp => sp.GetRequiredService<StorageBatchQueueListener>());
        }

        if (transport.ServiceBusIntake is not null)
        {
            var connectionString = configuration.GetConnectionString("ServiceBus");
            services.TryAddSingleton(sp => string.IsNullOrWhiteSpace(connectionString)
                ? new ServiceBusClient(configuration[$"{ServiceBusOptions.Section}:FullyQualifiedNamespace"], sp.GetRequiredService<TokenCredential>())
                : new ServiceBusClient(connectionString));
            services.AddHostedService<ServiceBusBatchProcessor>();
        }

        return services;
    }
}
