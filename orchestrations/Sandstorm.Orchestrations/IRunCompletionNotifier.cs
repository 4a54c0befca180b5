using System.Collections.Concurrent;
using Sandstorm.Storage;

namespace Sandstorm.Orchestrations;

/// <summary>
/// Wakes in-process waiters when a run is settled, so a synchronous caller gets its result as soon as it is written
/// instead of after the engine's status poll, and hands them the record as written (no read back). Waiters in other processes
/// fall back to polling the run table.
/// </summary>
public sealed class RunCompletionNotifier
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource<RunRecord>> _waiters = new();

    /// <summary>A task that completes with the final record when <paramref name="runId"/> is settled in this process.</summary>
    public Task<RunRecord> WhenSettled(string runId) =>
        _waiters.GetOrAdd(runId, _ => new TaskCompletionSource<RunRecord>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    /// <summary>Called once the final record is stored.</summary>
    public void Settled(RunRecord record)
    {
        if (_waiters.TryRemove(record.RunId, out var waiter))
        {
            waiter.TrySetResult(record);
        }
    }

    /// <summary>Forgets a waiter that gave up.</summary>
    public void Forget(string runId) => _waiters.TryRemove(runId, out _);
}
