using Sandstorm.Storage;

namespace Sandstorm.Orchestrations;

/// <summary>
/// Wakes in-process waiters when a run is settled, so a synchronous caller gets its result as soon as it is written
/// instead of after the engine's status poll, and hands them the record as written (no read back). Waiters in other processes
/// fall back to polling the run table. Several waiters of one run (a <c>?wait</c> and an event stream) share its task;
/// it is forgotten when the last of them gives up.
/// </summary>
public sealed class RunCompletionNotifier
{
    private readonly Dictionary<string, (TaskCompletionSource<RunRecord> Settled, int Waiters)> _waiters = new(StringComparer.Ordinal);

    /// <summary>A task that completes with the final record when <paramref name="runId"/> is settled in this process; pair with <see cref="Forget"/>.</summary>
    public Task<RunRecord> WhenSettled(string runId) => Wait(runId, join: false);

    /// <summary>
    /// As <see cref="WhenSettled"/> for the waiter that registered with it before the run could settle (the submitting
    /// request): takes that registration over rather than adding one.
    /// </summary>
    public Task<RunRecord> TakeOver(string runId) => Wait(runId, join: true);

    private Task<RunRecord> Wait(string runId, bool join)
    {
        lock (_waiters)
        {
            if (_waiters.TryGetValue(runId, out var found) && join)
            {
                return found.Settled.Task;
            }

            (TaskCompletionSource<RunRecord> Settled, int Waiters) entry = found.Settled is null
                ? (new TaskCompletionSource<RunRecord>(TaskCreationOptions.RunContinuationsAsynchronously), 0)
                : found;
            _waiters[runId] = (entry.Settled, entry.Waiters + 1);
            return entry.Settled.Task;
        }
    }

    /// <summary>Called once the final record is stored.</summary>
    public void Settled(RunRecord record)
    {
        TaskCompletionSource<RunRecord>? settled = null;
        lock (_waiters)
        {
            if (_waiters.Remove(record.RunId, out var entry))
            {
                settled = entry.Settled;
            }
        }

        settled?.TrySetResult(record);
    }

    /// <summary>A waiter gave up (or got its answer): the run is forgotten once no one waits for it.</summary>
    public void Forget(string runId)
    {
        lock (_waiters)
        {
            if (_waiters.TryGetValue(runId, out var entry))
            {
                if (entry.Waiters <= 1)
                {
                    _waiters.Remove(runId);
                }
                else
                {
                    _waiters[runId] = (entry.Settled, entry.Waiters - 1);
                }
            }
        }
    }
}
