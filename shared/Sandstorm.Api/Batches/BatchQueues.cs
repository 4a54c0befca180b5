using System.Text.Json;
using Azure.Storage.Queues;
using Microsoft.Extensions.Options;
using Sandstorm.Core;
using Sandstorm.Storage;

namespace Sandstorm.Api.Batches;

/// <summary>The Azure Storage batch queue (<c>Sandstorm:Storage:BatchQueue</c>) every host sends batches to (see <see cref="BatchTransport"/>).</summary>
public sealed class StorageBatchQueue(QueueServiceClient service, IOptions<StorageOptions> options)
{
    private readonly CreateOnce<QueueClient> _queue = new(async () =>
    {
        var queue = service.GetQueueClient(options.Value.BatchQueue);
        await queue.CreateIfNotExistsAsync();
        return queue;
    });

    public async Task SendAsync(BatchMessage message, CancellationToken cancellationToken)
    {
        var queue = await _queue.GetAsync();
        await queue.SendMessageAsync(JsonSerializer.Serialize(message, SandstormJson.Options), cancellationToken);
    }

    /// <summary>The queue's name (<c>Sandstorm:Storage:BatchQueue</c>).</summary>
    public string Name => options.Value.BatchQueue;

    /// <summary>Messages waiting in the queue, as the service estimates them (the batch queue depth gauge).</summary>
    public async Task<int> ApproximateDepthAsync(CancellationToken cancellationToken)
    {
        var queue = await _queue.GetAsync();
        return (await queue.GetPropertiesAsync(cancellationToken)).Value.ApproximateMessagesCount;
    }
}

/// <summary>Where Sandstorm's Service Bus intake is (section <c>Sandstorm:ServiceBus</c>; or <c>ConnectionStrings:ServiceBus</c>).</summary>
public sealed class ServiceBusOptions
{
    public const string Section = "Sandstorm:ServiceBus";

    /// <summary>e.g. <c>sandstorm-prod.servicebus.windows.net</c>; reached with the managed identity.</summary>
    public string? FullyQualifiedNamespace { get; set; }

    public string BatchQueue { get; set; } = "sandstorm-batches";

    /// <summary>Messages handled at once by the processor.</summary>
    public int MaxConcurrentCalls { get; set; } = 4;
}
