using Azure.Storage.Queues;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Sandstorm.Api.Batches;
using Sandstorm.Storage;

namespace Sandstorm.Functions;

/// <summary>
/// The batch queue's trigger: the same intake the local host's listener calls. Refused messages go to
/// <c>{queue}-poison</c> with their reason; a throw lets the trigger retry and, after maxDequeueCount, poison it itself.
/// </summary>
public static class QueueFunctions
{
    [Function("BatchQueue")]
    public static async Task BatchQueue(
        [QueueTrigger("%Sandstorm:Storage:BatchQueue%")] string body,
        string id,
        [DurableClient] DurableTaskClient client,
        FunctionContext context)
    {
        var services = context.InstanceServices;
        var result = await services.GetRequiredService<BatchIntake>().HandleAsync(client, body, id, context.CancellationToken);
        if (!result.Accepted)
        {
            var queue = services.GetRequiredService<IOptions<StorageOptions>>().Value.BatchQueue;
            await QueuePoison.SendAsync(services.GetRequiredService<QueueServiceClient>(), queue, id, body, result.Detail, context.CancellationToken);
        }
    }
}
