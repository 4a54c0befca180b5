using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Sandstorm.Api.Edge;
using Sandstorm.Api.Sandboxes;

namespace Sandstorm.Functions;

/// <summary>The edge sweeper on a timer: the Functions app has no long-lived process to host the local host's loop.</summary>
public sealed class EdgeFunctions(EdgeSweeper sweeper, SandboxReaper reaper)
{
    /// <summary>Every 10 s: re-dispatch or fail jobs of edge agents that stopped heartbeating (agent timeout defaults to 30 s).</summary>
    [Function("EdgeSweep")]
    public async Task EdgeSweep(
        [TimerTrigger("*/10 * * * * *")] TimerInfo timer,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken) =>
        await sweeper.SweepAsync(client, cancellationToken);

    /// <summary>Every 30 s: kept sandboxes whose agent or cloud no longer holds them are recorded lost and ended.</summary>
    [Function("SandboxReaper")]
    public async Task SandboxReap(
        [TimerTrigger("*/30 * * * * *")] TimerInfo timer,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken) =>
        await reaper.SweepAsync(client, cancellationToken);
}
