using Azure.Messaging.ServiceBus;
using Microsoft.Extensions.Logging.Abstractions;
using Sandstorm.Api.Batches;

namespace Sandstorm.Batch.Tests;

/// <summary>
/// The Service Bus settling rules, driven with the SDK's model factory and a recording receiver: no broker runs here
/// (the Service Bus emulator needs Docker and SQL Edge), so only the mapping from intake result to settlement is tested.
/// </summary>
public sealed class ServiceBusBatchProcessorTests
{
    [Fact]
    public async Task AcceptedMessage_IsCompleted()
    {
        var (receiver, args) = Delivery("""{"tenantId":"t","batchId":"b","manifest":"t/b/manifest.jsonl"}""");
        string? seenBody = null;
        await ServiceBusBatchProcessor.HandleAsync(args, (body, id, _) =>
        {
            seenBody = body;
            Assert.Equal("msg-1", id);
            return Task.FromResult(IntakeResult.Ok("batch b started"));
        }, NullLogger.Instance);

        Assert.Equal(["complete"], receiver.Calls);
        Assert.Contains("\"batchId\":\"b\"", seenBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PoisonMessage_IsDeadLetteredWithReason()
    {
        var (receiver, args) = Delivery("{oops");
        await ServiceBusBatchProcessor.HandleAsync(args, (_, _, _) => Task.FromResult(IntakeResult.Poison("malformed message: bad json")), NullLogger.Instance);

        Assert.Equal(["dead-letter"], receiver.Calls);
        Assert.Equal(ServiceBusBatchProcessor.PoisonReason, receiver.DeadLetterReason);
        Assert.Equal("malformed message: bad json", receiver.DeadLetterDescription);
    }

    [Fact]
    public async Task FailingIntake_AbandonsForRedelivery()
    {
        var (receiver, args) = Delivery("{}");
        await ServiceBusBatchProcessor.HandleAsync(args, (_, _, _) => throw new InvalidOperationException("storage down"), NullLogger.Instance);

        Assert.Equal(["abandon"], receiver.Calls);
    }

    private static (RecordingReceiver Receiver, ProcessMessageEventArgs Args) Delivery(string body)
    {
        var message = ServiceBusModelFactory.ServiceBusReceivedMessage(body: BinaryData.FromString(body), messageId: "msg-1", deliveryCount: 1);
        var receiver = new RecordingReceiver();
        return (receiver, new ProcessMessageEventArgs(message, receiver, CancellationToken.None));
    }

    /// <summary>Stands in for the broker connection, which cannot run here; records how each message was settled.</summary>
    private sealed class RecordingReceiver : ServiceBusReceiver
    {
        public List<string> Calls { get; } = [];

        public string? DeadLetterReason { get; private set; }

        public string? DeadLetterDescription { get; private set; }

        public override Task CompleteMessageAsync(ServiceBusReceivedMessage message, CancellationToken cancellationToken = default)
        {
            Calls.Add("complete");
            return Task.CompletedTask;
        }

        public override Task AbandonMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object>? propertiesToModify = null, CancellationToken cancellationToken = default)
        {
            Calls.Add("abandon");
            return Task.CompletedTask;
        }

        public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, string deadLetterReason, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default)
        {
            Calls.Add("dead-letter");
            DeadLetterReason = deadLetterReason;
            DeadLetterDescription = deadLetterErrorDescription;
            return Task.CompletedTask;
        }

        public override Task DeadLetterMessageAsync(ServiceBusReceivedMessage message, IDictionary<string, object> propertiesToModify, string deadLetterReason, string? deadLetterErrorDescription = null, CancellationToken cancellationToken = default) =>
            DeadLetterMessageAsync(message, deadLetterReason, deadLetterErrorDescription, cancellationToken);
    }
}
