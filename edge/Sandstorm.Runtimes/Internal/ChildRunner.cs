using System.Diagnostics;
using System.Text;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes.Internal;

/// <summary>What happened to the main process of a sandbox.</summary>
internal sealed record ChildOutcome(
    byte[] Stdout,
    bool StdoutTruncated,
    byte[] Stderr,
    bool StderrTruncated,
    int? ExitCode,
    TimeSpan WallTime,
    bool TimedOut)
{
    /// <summary>CPU time, peak memory and OOM verdict measured inside a guest (a microVM), instead of the host cgroup's.</summary>
    public (long CpuMs, long PeakBytes, bool OomKilled)? Guest { get; init; }
}

/// <summary>
/// Starts a sandbox's host command, born inside the execution's cgroups (see <see cref="Spawner"/>), so not one
/// instruction of it runs unlimited. Most runtimes' commands start directly; one that needs rlimits, a parent-death
/// signal or its own session goes through a tiny /bin/sh launcher that arranges them and then execs the command.
/// The command may run as the sandbox user from its first instruction (<see cref="Launch.UserName"/>).
/// </summary>
internal static class ChildRunner
{
    public static async Task<ChildOutcome> RunAsync(
        Launch launch,
        SandboxContext context,
        Func<Task> stopSandbox,
        CancellationToken ct)
    {
        var options = context.Options;
        var time = options.TimeProvider;
        var spec = context.Spec;
        var newSession = context.Cgroup is null && !launch.EndsWholeTree;
        var (psi, direct) = StartInfo(launch, newSession);

        using var process = new Process { StartInfo = psi };
        var started = time.GetTimestamp();
        // The sandboxed code's stdin is empty: it ends right after the start.
        await Spawner.StartAsync(process, context.Cgroup, direct ? launch.InheritedFiles : null, CloseInput);

        var pid = process.Id;

        using var abortReads = new CancellationTokenSource();
        var stdout = BoundedOutput.ReadAsync(process.StandardOutput.BaseStream, spec.OutputLimitBytes, abortReads.Token);
        var stderr = BoundedOutput.ReadAsync(process.StandardError.BaseStream, spec.OutputLimitBytes, abortReads.Token);

        var (stopped, timedOut) = await WithinTimeoutAsync(token => process.WaitForExitAsync(token), spec, time, ct);

        var wall = time.GetElapsedTime(started);

        // The sandbox ends when its main process ends: whatever it left running goes too (this also
        // closes the pipes those leftovers hold, so the readers below reach end of file).
        await stopSandbox();
        if (newSession)
        {
            // Without cgroups the launcher made the command a session and process-group leader.
            Libc.kill(-pid, Libc.SIGKILL);
        }

        if (!process.HasExited)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }

            using var grace = new CancellationTokenSource(options.KillGrace, time);
            try
            {
                await process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }

        abortReads.CancelAfter(options.KillGrace);
        var (outBytes, outTruncated) = await stdout;
        var (errBytes, errTruncated) = await stderr;
        int? exitCode = stopped || !process.HasExited ? null : process.ExitCode;
        return new ChildOutcome(outBytes, outTruncated, errBytes, errTruncated, exitCode, wall, timedOut);
    }

    /// <summary>
    /// Starts a kept sandbox's first process (its init) born in its cgroups, with stdin and stdout held by the caller for
    /// the init's protocol; stderr is read and dropped (the init writes nothing there itself).
    /// </summary>
    public static async Task<Process> StartKeptAsync(Launch launch, SandboxContext context)
    {
        var (psi, direct) = StartInfo(launch, newSession: false);
        var process = new Process { StartInfo = psi };
        await Spawner.StartAsync(process, context.Cgroup, direct ? launch.InheritedFiles : null);
        _ = BoundedOutput.ReadAsync(process.StandardError.BaseStream, 64 * 1024, CancellationToken.None);
        return process;
    }

    // The host process of a sandbox: its command directly, or through the /bin/sh launcher when it needs limits, a
    // parent-death signal or its own session arranged first.
    public static (ProcessStartInfo StartInfo, bool Direct) StartInfo(Launch launch, bool newSession)
    {
        var direct = launch.Direct && !newSession;
        var psi = new ProcessStartInfo(direct ? launch.Command : "/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = launch.WorkingDirectory,
            UserName = launch.UserName,
        };
        if (!direct)
        {
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(Script(launch, newSession));
            psi.ArgumentList.Add("sandstorm-launch");
            psi.ArgumentList.Add(launch.Command);
        }

        foreach (var argument in launch.Arguments)
        {
            // The launcher opens the inherited file as fd 3; a direct start gets whatever number the spawner opens.
            psi.ArgumentList.Add(argument == Launch.InheritedFd && !direct ? "3" : argument);
        }

        psi.Environment.Clear();
        foreach (var (key, value) in launch.Environment)
        {
            psi.Environment[key] = value;
        }

        return (psi, direct);
    }

    /// <summary>
    /// Runs the code of a sandbox whose first process is already up and waiting for a go-ahead line on its stdin
    /// (a warm gVisor sandbox): sends it, then waits until the sandbox closes stdout and stderr, which it does when it
    /// ends. The same output caps, timeout and stop as <see cref="RunAsync"/>.
    /// </summary>
    public static async Task<ChildOutcome> RunStartedAsync(
        StreamWriter input,
        Stream output,
        Stream error,
        Func<int?> exitCode,
        SandboxContext context,
        Func<Task> stopSandbox,
        CancellationToken ct)
    {
        var options = context.Options;
        var time = options.TimeProvider;
        var spec = context.Spec;
        using var abortReads = new CancellationTokenSource();
        var stdout = BoundedOutput.ReadAsync(output, spec.OutputLimitBytes, abortReads.Token);
        var stderr = BoundedOutput.ReadAsync(error, spec.OutputLimitBytes, abortReads.Token);
        var started = time.GetTimestamp();
        try
        {
            input.Write(Go + "\n");
            input.Close();
        }
        catch (IOException)
        {
            // The sandbox is gone already: its output ends at once and there is no exit code.
        }

        var (stopped, timedOut) = await WithinTimeoutAsync(token => Task.WhenAll(stdout, stderr).WaitAsync(token), spec, time, ct);

        var wall = time.GetElapsedTime(started);
        if (timedOut && wall < spec.Timeout)
        {
            // The timer's granularity is about a millisecond: a run stopped at its timeout ran for the timeout.
            wall = spec.Timeout;
        }

        await stopSandbox();
        abortReads.CancelAfter(options.KillGrace);
        var (outBytes, outTruncated) = await stdout;
        var (errBytes, errTruncated) = await stderr;
        return new ChildOutcome(outBytes, outTruncated, errBytes, errTruncated, stopped ? null : exitCode(), wall, timedOut);
    }

    /// <summary>
    /// Runs a Python main file in a child of the fork server (<see cref="PythonForkServer"/>), which joins the execution's
    /// cgroups before running any of the code. Its stdout and stderr are FIFOs read here with the same caps; the same
    /// timeout and stop as <see cref="RunAsync"/>. Null when the server gave no pid and nothing ran in the cgroups: then
    /// nothing of the run has started.
    /// If the server dies during the run, the child dies with it and the run ends without an exit code.
    /// </summary>
    public static async Task<ChildOutcome?> RunForkedAsync(
        PythonForkServer server, Launch launch, string main, SandboxContext context, Func<Task> stopSandbox, CancellationToken ct)
    {
        var options = context.Options;
        var time = options.TimeProvider;
        var spec = context.Spec;
        var outPath = Path.Combine(server.FifoDirectory, context.Id + ".out");
        var errPath = Path.Combine(server.FifoDirectory, context.Id + ".err");
        Stream? output = null, error = null;
        try
        {
            // Made again if something removed it since the server started (a cleaner of temporary files).
            Directory.CreateDirectory(server.FifoDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            output = OpenFifo(outPath);
            error = OpenFifo(errPath);
            var started = time.GetTimestamp();
            Task<int> exit;
            try
            {
                exit = (await server.ForkAsync(
                    context.Id, main, launch.WorkingDirectory, launch.Environment, outPath, errPath,
                    context.Cgroup!.ProcsFiles, (long)options.ScratchSizeMiB * 1024 * 1024)).Exit;
            }
            catch (IOException e)
            {
                // No pid: the server could not fork, or died (or was killed as stuck) before it answered. Its children die
                // with it, but one may have joined the run's cgroups and begun the code first: then the run has started
                // and ends as a run whose server died, with what it wrote. Only a run that never got that far starts
                // again, cold.
                await stopSandbox();
                if (!context.Cgroup!.EverRan())
                {
                    return null;
                }

                exit = Task.FromException<int>(e);
            }

            using var abortReads = new CancellationTokenSource();
            var stdout = BoundedOutput.ReadAsync(output, spec.OutputLimitBytes, abortReads.Token);
            var stderr = BoundedOutput.ReadAsync(error, spec.OutputLimitBytes, abortReads.Token);
            var (stopped, timedOut) = await WithinTimeoutAsync(token => Task.WhenAny(exit).WaitAsync(token), spec, time, ct);
            var wall = time.GetElapsedTime(started);

            // As for a started process: whatever the code left running goes too, which also ends the reads.
            await stopSandbox();
            abortReads.CancelAfter(options.KillGrace);
            var (outBytes, outTruncated) = await stdout;
            var (errBytes, errTruncated) = await stderr;
            int? exitCode = stopped || !exit.IsCompletedSuccessfully ? null : exit.Result;
            return new ChildOutcome(outBytes, outTruncated, errBytes, errTruncated, exitCode, wall, timedOut);
        }
        finally
        {
            output?.Dispose();
            error?.Dispose();
            File.Delete(outPath);
            File.Delete(errPath);
        }

        static Stream OpenFifo(string path)
        {
            var fd = Libc.CreateFifoForReading(path);
            if (fd < 0)
            {
                throw new IOException($"cannot create FIFO {path} (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})");
            }

            var handle = new Microsoft.Win32.SafeHandles.SafePipeHandle(fd, ownsHandle: true);
            return new System.IO.Pipes.AnonymousPipeClientStream(System.IO.Pipes.PipeDirection.In, handle);
        }
    }

    // Waits for the end of the sandbox, bounded by its timeout and the caller's token. Stopped: either cut it short.
    private static async Task<(bool Stopped, bool TimedOut)> WithinTimeoutAsync(Func<CancellationToken, Task> end, ExecutionSpec spec, TimeProvider time, CancellationToken ct)
    {
        using var timeout = new CancellationTokenSource(spec.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, ct);
        try
        {
            await end(linked.Token);
            return (false, false);
        }
        catch (OperationCanceledException)
        {
            return (true, !ct.IsCancellationRequested);
        }
    }

    /// <summary>The go-ahead line of <see cref="RunStartedAsync"/>.</summary>
    public const string Go = "go";

    public static void CloseInput(Process process)
    {
        try
        {
            process.StandardInput.Close();
        }
        catch (IOException)
        {
        }
    }

    private static string Script(Launch launch, bool newSession)
    {
        // Exit code 125 marks a launcher failure rather than the sandboxed code's own exit.
        var script = new StringBuilder();
        script.Append("ulimit -c 0\n");
        foreach (var limit in launch.Ulimits)
        {
            script.Append("ulimit ").Append(limit).Append(" || exit 125\n");
        }

        if (launch.InheritedFiles.Count > 1)
        {
            throw new InvalidOperationException("the launcher passes on at most one inherited file");
        }

        foreach (var file in launch.InheritedFiles)
        {
            script.Append("exec 3< ").Append(Quote(file)).Append(" || exit 125\n");
        }

        script.Append("exec ");
        if (newSession)
        {
            script.Append("/usr/bin/setsid -w ");
        }

        if (launch.DieWithHost)
        {
            // The launcher is not a process-group leader, so setsid execs rather than forks and the signal stays armed.
            script.Append("/usr/bin/setpriv --pdeathsig KILL -- ");
        }

        script.Append("\"$@\"\n");
        return script.ToString();
    }

    private static string Quote(string value) => "'" + value.Replace("'", "'\\''") + "'";
}
