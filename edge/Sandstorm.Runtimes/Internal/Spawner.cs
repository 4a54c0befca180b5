using System.Collections.Concurrent;
using System.Diagnostics;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// Starts sandbox processes from one long-lived thread. The kernel's parent-death signal (bwrap's
/// <c>--die-with-parent</c>, <c>setpriv --pdeathsig</c>) fires when the forking <em>thread</em> exits, and .NET forks
/// on the thread that calls <see cref="Process.Start()"/>: from a pool thread, which retires when idle, a healthy
/// sandbox could be killed mid-run. This thread lives as long as the process, so the signal means "host died".
/// </summary>
internal static class Spawner
{
    private static readonly BlockingCollection<(Process Process, TaskCompletionSource Started)> Queue = [];

    static Spawner()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "sandstorm-spawner" };
        thread.Start();
    }

    public static Task StartAsync(Process process)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Queue.Add((process, started));
        return started.Task;
    }

    private static void Run()
    {
        foreach (var (process, started) in Queue.GetConsumingEnumerable())
        {
            try
            {
                process.Start();
                started.SetResult();
            }
            catch (Exception e)
            {
                started.SetException(e);
            }
        }
    }
}
