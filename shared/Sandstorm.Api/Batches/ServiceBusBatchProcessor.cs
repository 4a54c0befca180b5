using System.Text.Json;
using Azure.Messaging.ServiceBus;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Sandstorm.Core;

namespace Sandstorm.Api.Batches;

/// <summary>
/// The Service Bus intake: takes batch messages from a Service Bus queue with a <see cref="ServiceBusProcessor"/> (no
/// Functions Service Bus trigger is served) and forwards each to the Storage batch queue, whose one consumer per host
/// does the intake. Forwarded → complete; not a batch message at all → dead-letter with the reason; a failed forward →
/// abandon, so the broker redelivers and dead-letters after the queue's MaxDeliveryCount. A single run keeps the Service
/// Bus message id as its idempotency key, so a redelivery after a lost completion starts nothing twice.
/// </summary>
public sealed class ServiceBusBatchProcessor(
    ServiceBusClient serviceBus,
    StorageBatchQueue storageQueue,
    IOptions<ServiceBusOptions> options,
    ILogger<ServiceBusBatchProcessor> logger)
    : BackgroundService
{
    /// <summary>Dead-letter reason of messages Sandstorm refused.</summary>
    public const string PoisonReason = "SandstormPoisonMessage";

    public delegate Task<IntakeResult> Intake(string body, string messageId, CancellationToken cancellationToken);

    /// <summary>Settles one message by what the intake made of it; kept static so tests drive it with the SDK's model factory.</summary>
    public static async Task HandleAsync(ProcessMessageEventArgs args, Intake intake, ILogger logger)
    {
        var message = args.Message;
        IntakeResult result;
        try
        {
            result = await intake(message.Body.ToString(), message.MessageId, args.CancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException || !args.CancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(e, "Batch message {MessageId} failed (delivery {Count}); abandoning it", message.MessageId, message.DeliveryCount);
            await args.AbandonMessageAsync(message, cancellationToken: args.CancellationToken);
            return;
        }

        if (result.Accepted)
        {
            await args.CompleteMessageAsync(message, args.CancellationToken);
            return;
        }

        logger.LogWarning("Batch message {MessageId} is poison: {Reason}", message.MessageId, result.Detail);
        // The description is capped by the broker (4 KiB of properties); the reason is what matters.
        var description = result.Detail.Length > 1024 ? result.Detail[..1024] : result.Detail;
        await args.DeadLetterMessageAsync(message, PoisonReason, description, args.CancellationToken);
    }

    /// <summary>Puts one Service Bus message on the Storage batch queue, or refuses it when it is not a batch message.</summary>
    public static async Task<IntakeResult> ForwardAsync(StorageBatchQueue queue, string body, string messageId, CancellationToken cancellationToken)
    {
        BatchMessage? message;
        try
        {
            message = JsonSerializer.Deserialize<BatchMessage>(body, SandstormJson.Strict);
        }
        catch (JsonException e)
        {
            return IntakeResult.Poison($"malformed message: {e.Message}");
        }

        if (message is null)
        {
            return IntakeResult.Poison("malformed message: null");
        }

        await queue.SendAsync(message with { IdempotencyKey = message.IdempotencyKey ?? (message.Request is null ? null : "servicebus:" + messageId) }, cancellationToken);
        return IntakeResult.Ok("forwarded to the storage batch queue");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await using var processor = serviceBus.CreateProcessor(options.Value.BatchQueue, new ServiceBusProcessorOptions
        {
            AutoCompleteMessages = false,
            MaxConcurrentCalls = Math.Max(1, options.Value.MaxConcurrentCalls),
        });
        processor.ProcessMessageAsync += args => HandleAsync(args, (body, id, ct) => ForwardAsync(storageQueue, body, id, ct), logger);
        processor.ProcessErrorAsync += args =>
        {
            logger.LogWarning(args.Exception, "Service Bus batch processor error ({Source})", args.ErrorSource);
            return Task.CompletedTask;
        };
        await processor.StartProcessingAsync(stoppingToken);
        try
        {
            await Task.Delay(Timeout.Infinite, stoppingToken);
        }
        catch (OperationCanceledException)
        {
        }

        await processor.StopProcessingAsync(CancellationToken.None);
    }
}
