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
/// Starts a sandbox's host command through a tiny /bin/sh launcher that waits until this process has moved it
/// into the execution's cgroups (so not one instruction of the command runs unlimited), applies rlimits, then
/// execs the command. The launcher may already run as the sandbox user (<see cref="Launch.UserName"/>): moving
/// it is done here, as root, so the cgroup files stay root's and no privilege-dropping exec is needed.
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
            UserName = launch.UserName,
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
        var cgroup = context.Cgroup;
        await Spawner.StartAsync(process, launched => GoAhead(launched, cgroup));
        var pid = process.Id;

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

    // Runs on the spawner thread right after the launcher started: into the cgroups, then the go-ahead on stdin.
    private static void GoAhead(Process launcher, SandboxCgroup? cgroup)
    {
        if (cgroup is not null)
        {
            try
            {
                cgroup.Join(launcher.Id);
            }
            catch
            {
                // The launcher never got the go-ahead, so nothing of the command ran; it must not run unlimited either.
                launcher.Kill();
                launcher.WaitForExit();
                throw;
            }
        }

        try
        {
            if (cgroup is not null)
            {
                launcher.StandardInput.Write(Go + "\n");
            }

            launcher.StandardInput.Close();
        }
        catch (IOException)
        {
        }
    }

    private static string Script(Launch launch, SandboxCgroup? cgroup, bool newSession)
    {
        var script = new StringBuilder();
        if (cgroup is not null)
        {
            // Exit code 125 marks a launcher failure rather than the sandboxed code's own exit. The go-ahead comes
            // once this process has put the launcher into the cgroups; without it (a failed join) nothing runs.
            script.Append("IFS= read -r go && [ \"$go\" = ").Append(Go).Append(" ] || exit 125\n");
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

    private const string Go = "go";

    private static string Quote(string value) => "'" + value.Replace("'", "'\\''") + "'";
}
