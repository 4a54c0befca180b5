using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// Starts sandbox processes from one long-lived thread. The kernel's parent-death signal (bwrap's
/// <c>--die-with-parent</c>, <c>setpriv --pdeathsig</c>) fires when the forking <em>thread</em> exits, and .NET forks
/// on the thread that calls <see cref="Process.Start()"/>: from a pool thread, which retires when idle, a healthy
/// sandbox could be killed mid-run. This thread lives as long as the process, so the signal means "host died".
/// </summary>
internal static class Spawner
{
    private static readonly BlockingCollection<Request> Queue = [];

    static Spawner()
    {
        // No core dumps, neither of this process (it holds the agent's credential) nor of anything it starts: a
        // directly started runtime (bwrap) has no launcher to say `ulimit -c 0`, and the hard limit of 0 cannot be
        // raised by the sandboxed code.
        Libc.DisableCoreDumps();
        var thread = new Thread(Run) { IsBackground = true, Name = "sandstorm-spawner" };
        thread.Start();
    }

    /// <summary>Starts the process on the spawner thread; <paramref name="afterStart"/> runs there right after the start.</summary>
    /// <param name="process">The process to start.</param>
    /// <param name="cgroup">
    /// Groups the process is born in: the spawner thread joins them just for the fork (see
    /// <see cref="SandboxCgroup.AddThread"/>), so no launcher has to wait to be moved.
    /// </param>
    /// <param name="inheritedFiles">
    /// Files the process inherits open read-only; <see cref="Launch.InheritedFdOf"/> of each among its arguments is
    /// replaced by the descriptor's number. They are opened here, after every other descriptor was marked
    /// close-on-exec, and closed right after the start, so no other child can inherit them.
    /// </param>
    /// <param name="afterStart">Runs on the spawner thread right after the start.</param>
    /// <remarks>
    /// Doing the launcher's go-ahead (stdin write) in <paramref name="afterStart"/> rather than in the awaiting code
    /// saves a hop through the thread pool between start and go, which a loaded machine makes costly.
    /// </remarks>
    public static Task StartAsync(Process process, SandboxCgroup? cgroup = null, IReadOnlyList<string>? inheritedFiles = null, Action<Process>? afterStart = null)
    {
        var request = new Request(process, cgroup, inheritedFiles ?? [], afterStart, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        Queue.Add(request);
        return request.Started.Task;
    }

    private static void Run()
    {
        var tid = Libc.gettid();
        foreach (var request in Queue.GetConsumingEnumerable())
        {
            try
            {
                // Only stdin, stdout and stderr go to a sandbox: a descriptor this process inherited without
                // close-on-exec (from a shell, a service manager) would otherwise pass through bwrap into the code.
                Libc.CloseOnExecFrom(3);
                Start(request, tid);
                request.AfterStart?.Invoke(request.Process);
                request.Started.SetResult();
            }
            catch (Exception e)
            {
                request.Started.SetException(e);
            }
        }
    }

    // Set while the spawner thread is (or may be) outside its own groups.
    private static RuntimeOptions? strayed;

    private static void Start(Request request, int tid)
    {
        var fds = new List<int>(request.InheritedFiles.Count);
        try
        {
            var arguments = request.Process.StartInfo.ArgumentList;
            for (var index = 0; index < request.InheritedFiles.Count; index++)
            {
                var file = request.InheritedFiles[index];
                var fd = Libc.OpenInheritable(file);
                if (fd < 0)
                {
                    throw new IOException($"cannot open {file} (errno {Marshal.GetLastPInvokeError()})");
                }

                fds.Add(fd);
                var placeholder = Launch.InheritedFdOf(index);
                for (var i = 0; i < arguments.Count; i++)
                {
                    if (arguments[i] == placeholder)
                    {
                        arguments[i] = fd.ToString(CultureInfo.InvariantCulture);
                    }
                }
            }

            if (strayed is not null)
            {
                // An earlier return failed: no process may start in another sandbox's groups.
                SandboxCgroup.ReturnThread(strayed, tid);
                strayed = null;
            }

            if (request.Cgroup is null)
            {
                request.Process.Start();
                return;
            }

            request.Cgroup.AddThread(tid);
            strayed = request.Cgroup.Options;
            try
            {
                request.Process.Start();
            }
            finally
            {
                SandboxCgroup.ReturnThread(request.Cgroup.Options, tid);

                // A thread this one created meanwhile was born in the sandbox's groups too (.NET starts its child-reaping
                // thread on the first start): it must come home, or the sandbox's kill would hit this process.
                request.Cgroup.ReturnOwnThreads();
                strayed = null;
            }
        }
        finally
        {
            foreach (var fd in fds)
            {
                Libc.close(fd);
            }
        }
    }

    private sealed record Request(Process Process, SandboxCgroup? Cgroup, IReadOnlyList<string> InheritedFiles, Action<Process>? AfterStart, TaskCompletionSource Started);
}
