using Microsoft.Extensions.Configuration;
using Sandstorm.Storage;

namespace Sandstorm.Api.Batches;

/// <summary>
/// How batch messages travel on a host, decided once (sender and consumer together): the API always sends to the Storage
/// batch queue, which the host consumes — the Functions queue trigger in Azure, <see cref="StorageBatchQueueListener"/>
/// on the local host. Where Service Bus is configured, its batch queue is a second intake for producers outside
/// Sandstorm, taken by <see cref="ServiceBusBatchProcessor"/> on either host (no Service Bus trigger extension is served, so
/// the Functions app keeps an always-ready instance for it; see infra-bicep).
/// </summary>
public sealed record BatchTransport
{
    /// <summary>The Functions queue trigger takes the Storage queue (host.json's <c>queues.maxDequeueCount</c> poisons).</summary>
    public const string FunctionsQueueTrigger = "functions-queue-trigger";

    /// <summary>The in-process listener polls the Storage queue.</summary>
    public const string InProcessListener = "storage-queue-listener";

    /// <summary>The Storage queue the API sends to and the consumer takes from.</summary>
    public required string Queue { get; init; }

    /// <summary>Where refused messages go, with their reason (the Functions trigger's own convention).</summary>
    public string PoisonQueue => QueuePoison.PoisonQueueName(Queue);

    /// <summary>Tries before a message that keeps failing is poisoned, on both consumers.</summary>
    public int MaxDequeueCount => StorageBatchQueueListener.MaxDequeueCount;

    /// <summary><see cref="FunctionsQueueTrigger"/> or <see cref="InProcessListener"/>.</summary>
    public required string Consumer { get; init; }

    /// <summary>The Service Bus queue taken as a second intake, or null when Service Bus is not configured.</summary>
    public string? ServiceBusIntake { get; init; }

    public static BatchTransport For(HostProfile host, IConfiguration configuration)
    {
        var storage = new StorageOptions();
        configuration.GetSection(StorageOptions.Section).Bind(storage);
        var serviceBus = new ServiceBusOptions();
        configuration.GetSection(ServiceBusOptions.Section).Bind(serviceBus);
        var hasServiceBus = !string.IsNullOrWhiteSpace(configuration.GetConnectionString("ServiceBus"))
            || !string.IsNullOrWhiteSpace(serviceBus.FullyQualifiedNamespace);
        return new BatchTransport
        {
            Queue = storage.BatchQueue,
            Consumer = host.RunsLoops ? InProcessListener : FunctionsQueueTrigger,
            ServiceBusIntake = hasServiceBus ? serviceBus.BatchQueue : null,
        };
    }
}
