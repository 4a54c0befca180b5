using System.Collections.Concurrent;

namespace Sandstorm.Providers.Edge;

/// <summary>
/// Wakes an agent's long poll as soon as a job is dispatched to it in this process. Only a latency shortcut: polls also
/// re-read the table every <see cref="EdgeOptions.PollInterval"/>, so dispatches from other instances are found too.
/// </summary>
public sealed class EdgeJobSignal
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _waiters = new(StringComparer.Ordinal);

    public void Notify(string tenantId, string agentId)
    {
        if (_waiters.TryRemove(Key(tenantId, agentId), out var waiter))
        {
            waiter.TrySetResult();
        }
    }

    /// <summary>Completes when a job is dispatched to the agent, or after <paramref name="timeout"/>.</summary>
    public async Task WaitAsync(string tenantId, string agentId, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        var waiter = _waiters.GetOrAdd(Key(tenantId, agentId), _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await waiter.Task.WaitAsync(timeout, time, cancellationToken);
        }
        catch (TimeoutException)
        {
            // Nothing dispatched here in time: the caller re-reads the table anyway.
        }
    }

    private static string Key(string tenantId, string agentId) => tenantId + "/" + agentId;
}
