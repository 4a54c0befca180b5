using System.Text.Json;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Specialized;

namespace Sandstorm.Storage;

/// <summary>
/// Moves bad messages to <c>{queue}-poison</c> with the reason, as an envelope
/// <c>{"reason","queue","messageId","body"}</c>: the original body is kept verbatim for whoever inspects it.
/// </summary>
public static class QueuePoison
{
    public static string PoisonQueueName(string queue) => queue + "-poison";

    /// <summary>Sends the envelope to the poison queue of <paramref name="queue"/>; the caller then deletes the original.</summary>
    public static async Task SendAsync(QueueServiceClient service, string queue, string messageId, string body, string reason, CancellationToken cancellationToken)
    {
        var poison = service.GetQueueClient(PoisonQueueName(queue));
        await poison.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        var envelope = JsonSerializer.Serialize(new PoisonEnvelope(reason, queue, messageId, body), Core.SandstormJson.Options);
        await poison.SendMessageAsync(envelope, cancellationToken);
    }

    /// <summary>
    /// Handler for <see cref="QueueClientOptions.MessageDecodingFailed"/>: a message that is not Base64 (as Sandstorm's
    /// clients and the Functions queue trigger expect) would otherwise be skipped and come back forever.
    /// </summary>
    public static async Task OnDecodingFailedAsync(QueueMessageDecodingFailedEventArgs args)
    {
        if (args.ReceivedMessage is not { } message)
        {
            return;
        }

        var service = args.Queue.GetParentQueueServiceClient();
        var body = message.Body.ToString();
        await SendAsync(service, args.Queue.Name, message.MessageId, body, "the message is not Base64-encoded", args.CancellationToken);
        await args.Queue.DeleteMessageAsync(message.MessageId, message.PopReceipt, args.CancellationToken);
    }

    /// <summary>What a poison message holds.</summary>
    public sealed record PoisonEnvelope(string Reason, string Queue, string MessageId, string Body);
}
