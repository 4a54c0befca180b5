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
    private static readonly BlockingCollection<(Process Process, Action<Process>? AfterStart, TaskCompletionSource Started)> Queue = [];

    static Spawner()
    {
        var thread = new Thread(Run) { IsBackground = true, Name = "sandstorm-spawner" };
        thread.Start();
    }

    /// <summary>Starts the process on the spawner thread; <paramref name="afterStart"/> runs there right after the start.</summary>
    /// <remarks>
    /// Doing the launcher's go-ahead (cgroup join, stdin write) in <paramref name="afterStart"/> rather than in the
    /// awaiting code saves a hop through the thread pool between start and go, which a loaded machine makes costly.
    /// </remarks>
    public static Task StartAsync(Process process, Action<Process>? afterStart = null)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Queue.Add((process, afterStart, started));
        return started.Task;
    }

    private static void Run()
    {
        foreach (var (process, afterStart, started) in Queue.GetConsumingEnumerable())
        {
            try
            {
                // Only stdin, stdout and stderr go to a sandbox: a descriptor this process inherited without
                // close-on-exec (from a shell, a service manager) would otherwise pass through bwrap into the code.
                Libc.CloseOnExecFrom(3);
                process.Start();
                afterStart?.Invoke(process);
                started.SetResult();
            }
            catch (Exception e)
            {
                started.SetException(e);
            }
        }
    }
}
