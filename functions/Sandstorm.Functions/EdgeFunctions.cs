using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Sandstorm.Api.Edge;

namespace Sandstorm.Functions;

/// <summary>The edge sweeper on a timer: the Functions app has no long-lived process to host the local host's loop.</summary>
public sealed class EdgeFunctions(EdgeSweeper sweeper)
{
    /// <summary>Every 10 s: re-dispatch or fail jobs of edge agents that stopped heartbeating (agent timeout defaults to 30 s).</summary>
    [Function("EdgeSweep")]
    public async Task EdgeSweep(
        [TimerTrigger("*/10 * * * * *")] TimerInfo timer,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken) =>
        await sweeper.SweepAsync(client, cancellationToken);
}
