using System.Text.Json;
using Azure.Messaging.ServiceBus;
using Azure.Storage.Queues;
using Microsoft.Extensions.Options;
using Sandstorm.Core;
using Sandstorm.Storage;

namespace Sandstorm.Api.Batches;

/// <summary>Puts messages on the batch queue: the Storage queue, or Service Bus where a namespace is configured.</summary>
public interface IBatchQueue
{
    Task SendAsync(BatchMessage message, CancellationToken cancellationToken);
}

/// <summary>The Azure Storage batch queue (<c>Sandstorm:Storage:BatchQueue</c>).</summary>
public sealed class StorageBatchQueue(QueueServiceClient service, IOptions<StorageOptions> options) : IBatchQueue
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
}

/// <summary>Where Sandstorm's Service Bus is (section <c>Sandstorm:ServiceBus</c>; or <c>ConnectionStrings:ServiceBus</c>).</summary>
public sealed class ServiceBusOptions
{
    public const string Section = "Sandstorm:ServiceBus";

    /// <summary>e.g. <c>sandstorm-prod.servicebus.windows.net</c>; reached with the managed identity.</summary>
    public string? FullyQualifiedNamespace { get; set; }

    public string BatchQueue { get; set; } = "sandstorm-batches";

    /// <summary>Messages handled at once by the processor.</summary>
    public int MaxConcurrentCalls { get; set; } = 4;
}

/// <summary>The Service Bus batch queue; the message id is set so the broker's duplicate detection can use it.</summary>
public sealed class ServiceBusBatchQueue(ServiceBusClient client, IOptions<ServiceBusOptions> options) : IBatchQueue, IAsyncDisposable
{
    private readonly ServiceBusSender _sender = client.CreateSender(options.Value.BatchQueue);

    public async Task SendAsync(BatchMessage message, CancellationToken cancellationToken)
    {
        var body = new ServiceBusMessage(BinaryData.FromObjectAsJson(message, SandstormJson.Options)) { ContentType = "application/json" };
        if (message.BatchId is { } id)
        {
            body.MessageId = message.TenantId + "/" + id;
        }

        await _sender.SendMessageAsync(body, cancellationToken);
    }

    public ValueTask DisposeAsync() => _sender.DisposeAsync();
}
