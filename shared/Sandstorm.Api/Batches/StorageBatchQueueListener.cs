using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Sandstorm.Storage;

namespace Sandstorm.Api.Batches;

/// <summary>
/// Polls the Storage batch queue where no Functions queue trigger does (the local host, self-hosted deployments).
/// A message is deleted only after it was handled: poison messages are copied to <c>{queue}-poison</c> first;
/// a message whose handling throws comes back after a short visibility delay, and goes to poison after
/// <see cref="MaxDequeueCount"/> tries, as with the Functions trigger.
/// </summary>
public sealed class StorageBatchQueueListener(
    QueueServiceClient service,
    BatchIntake intake,
    DurableTaskClient client,
    IOptions<StorageOptions> options,
    TimeProvider time,
    ILogger<StorageBatchQueueListener> logger)
    : BackgroundService
{
    public const int MaxDequeueCount = 5;

    private static readonly TimeSpan Visibility = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan MaxIdle = TimeSpan.FromSeconds(1);

    private QueueClient? _queue;

    /// <summary>Receives and handles one round of messages; returns how many were received.</summary>
    public async Task<int> PollOnceAsync(CancellationToken cancellationToken)
    {
        var queue = await QueueAsync(cancellationToken);
        QueueMessage[] messages = await queue.ReceiveMessagesAsync(maxMessages: 16, Visibility, cancellationToken);
        foreach (var message in messages)
        {
            await HandleAsync(queue, message, cancellationToken);
        }

        return messages.Length;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var idle = TimeSpan.FromMilliseconds(50);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // Busy: poll again at once. Idle: back off to a second, so an idle host costs little.
                idle = await PollOnceAsync(stoppingToken) > 0 ? TimeSpan.FromMilliseconds(50) : TimeSpan.FromMilliseconds(Math.Min(idle.TotalMilliseconds * 2, MaxIdle.TotalMilliseconds));
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Storage down or throttled (the SDK's retries surface as AggregateException): keep the host up, try later.
                logger.LogWarning(e, "Batch queue poll failed; retrying");
                idle = MaxIdle;
            }

            try
            {
                await Task.Delay(idle, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task HandleAsync(QueueClient queue, QueueMessage message, CancellationToken cancellationToken)
    {
        var body = message.Body.ToString();
        IntakeResult result;
        try
        {
            result = await intake.HandleAsync(client, body, message.MessageId, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            if (message.DequeueCount < MaxDequeueCount)
            {
                logger.LogWarning(e, "Batch message {MessageId} failed (try {Try}); it will come back", message.MessageId, message.DequeueCount);
                await queue.UpdateMessageAsync(message.MessageId, message.PopReceipt, visibilityTimeout: RetryDelay, cancellationToken: cancellationToken);
                return;
            }

            result = IntakeResult.Poison($"failed {message.DequeueCount} times; last error: {e.GetType().Name}: {e.Message}");
        }

        if (!result.Accepted)
        {
            logger.LogWarning("Batch message {MessageId} is poison: {Reason}", message.MessageId, result.Detail);
            await QueuePoison.SendAsync(service, queue.Name, message.MessageId, body, result.Detail, cancellationToken);
        }

        await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt, cancellationToken);
    }

    private async Task<QueueClient> QueueAsync(CancellationToken cancellationToken)
    {
        if (_queue is null)
        {
            var queue = service.GetQueueClient(options.Value.BatchQueue);
            await queue.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
            _queue = queue;
        }

        return _queue;
    }
}
