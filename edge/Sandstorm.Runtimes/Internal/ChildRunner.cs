using System.Diagnostics;
using System.Text;

namespace Sandstorm.Runtimes.Internal;

/// <summary>What happened to the main process of a sandbox.</summary>
internal sealed record ChildOutcome(
    byte[] Stdout,
    bool StdoutTruncated,
    byte[] Stderr,
    bool StderrTruncated,
    int? ExitCode,
    TimeSpan WallTime,
    bool TimedOut);

/// <summary>
/// Starts a sandbox's host command through a tiny /bin/sh launcher that first joins the execution's cgroups
/// (so not one instruction of the child runs unlimited) and applies rlimits, then execs the command.
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
        var newSession = context.Cgroup is null;

        var psi = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = launch.WorkingDirectory,
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Script(launch, context.Cgroup, newSession));
        psi.ArgumentList.Add("sandstorm-launch");
        psi.ArgumentList.Add(launch.Command);
        foreach (var argument in launch.Arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        psi.Environment.Clear();
        foreach (var (key, value) in launch.Environment)
        {
            psi.Environment[key] = value;
        }

        using var process = new Process { StartInfo = psi };
        var started = time.GetTimestamp();
        process.Start();
        var pid = process.Id;
        try
        {
            process.StandardInput.Close();
        }
        catch (IOException)
        {
        }

        using var abortReads = new CancellationTokenSource();
        var stdout = BoundedOutput.ReadAsync(process.StandardOutput.BaseStream, spec.OutputLimitBytes, abortReads.Token);
        var stderr = BoundedOutput.ReadAsync(process.StandardError.BaseStream, spec.OutputLimitBytes, abortReads.Token);

        using var timeout = new CancellationTokenSource(spec.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, ct);
        var timedOut = false;
        var stopped = false;
        try
        {
            await process.WaitForExitAsync(linked.Token);
        }
        catch (OperationCanceledException)
        {
            timedOut = !ct.IsCancellationRequested;
            stopped = true;
        }

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

    private static string Script(Launch launch, SandboxCgroup? cgroup, bool newSession)
    {
        var script = new StringBuilder();
        if (cgroup is not null)
        {
            // Exit code 125 marks a launcher failure rather than the sandboxed code's own exit.
            foreach (var procs in cgroup.ProcsFiles)
            {
                script.Append("echo $$ > ").Append(Quote(procs)).Append(" || exit 125\n");
            }
        }

        script.Append("ulimit -c 0\n");
        foreach (var limit in launch.Ulimits)
        {
            script.Append("ulimit ").Append(limit).Append(" || exit 125\n");
        }

        if (launch.Fd3File is not null)
        {
            script.Append("exec 3< ").Append(Quote(launch.Fd3File)).Append(" || exit 125\n");
        }

        script.Append(newSession ? "exec /usr/bin/setsid -w \"$@\"\n" : "exec \"$@\"\n");
        return script.ToString();
    }

    private static string Quote(string value) => "'" + value.Replace("'", "'\\''") + "'";
}
