using System.Collections.Concurrent;

namespace Sandstorm.Orchestrations;

/// <summary>
/// Wakes in-process waiters when a run is settled, so a synchronous caller gets its result as soon as it is written
/// instead of after the engine's status poll. Waiters in other processes fall back to polling the run table.
/// </summary>
public sealed class RunCompletionNotifier
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _waiters = new();

    /// <summary>A task that completes when <paramref name="runId"/> is settled in this process.</summary>
    public Task WhenSettled(string runId) =>
        _waiters.GetOrAdd(runId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public void Settled(string runId)
    {
        if (_waiters.TryRemove(runId, out var waiter))
        {
            waiter.TrySetResult();
        }
    }

    /// <summary>Forgets a waiter that gave up.</summary>
    public void Forget(string runId) => _waiters.TryRemove(runId, out _);
}
