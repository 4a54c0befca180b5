using System.Diagnostics;
using System.Globalization;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// Isolation <c>strong</c> with gVisor (<c>runsc</c>, ptrace platform): the code talks to gVisor's user-space kernel,
/// never to the host's; no network at all (<c>--network=none</c>); the seccomp allow-list applied inside
/// (<c>--oci-seccomp</c>); the same read-only root and /scratch as runc, its mounts cached by the sentry
/// (<c>--file-access-mounts=exclusive</c>). The host pids cgroup counts gVisor's own
/// threads, so it is at least 512 and forks inside are bounded by RLIMIT_NPROC; the memory limit adds headroom
/// for the sentry itself.
/// </summary>
/// <remarks>
/// <para>
/// Booting a sandbox (the sentry and the gofer, five starts of the runsc binary) is about two thirds of gVisor's
/// start-up. With <see cref="RuntimeOptions.WarmGvisorSandboxes"/> set, that many sandboxes are kept booted ahead of
/// demand, each with its own cgroup and empty /scratch, its first process a shell waiting on stdin. An execution
/// claims one, sets its limits, writes its files and a script, and sends the go-ahead: the shell runs the code under
/// the seccomp filter gVisor gave it (which <c>runsc exec</c> would not apply). A sandbox serves exactly one
/// execution and is destroyed after it, like a cold one; a replacement boots in the background. Without a warm
/// sandbox at hand an execution boots its own (<c>runsc run</c>), so a burst is never held up by the pool.
/// </para>
/// <para>
/// The waiting shell's stdin is a pipe held by this process: if this process dies, the shell reads end-of-file and
/// exits, and its sandbox with it. What it leaves on disk is removed by the next pool in the same work root.
/// </para>
/// </remarks>
public sealed class GvisorRuntime : SandboxRuntimeBase, IAsyncDisposable
{
    public const string RuntimeName = "gvisor";
    private const string Runsc = "/usr/bin/runsc";

    /// <summary>Warm sandboxes' ids start with this, executions' with "ss".</summary>
    private const string WarmPrefix = "sw";

    /// <summary>Host memory the gVisor sentry and gofer need on top of the sandboxed code's own limit.</summary>
    public const int SentryOverheadMiB = 192;

    // RLIMIT_NPROC of a warm sandbox's shell: only ever lowered, to the execution's own limit, once claimed.
    private const int WarmProcessCeiling = 32_768;

    // Limits while warm; the claim sets the execution's own.
    private static readonly ExecutionSpec WarmSpec = new() { Language = Languages.Bash, Code = "", MemoryMiB = 256, Cpu = 1 };

    private readonly Lock poolLock = new();
    private readonly Queue<SandboxContext> warm = new();
    private readonly List<Task> boots = [];
    private int booting;
    private bool disposed;
    private long warmClaims;

    // Rootless, runsc maps only the agent's user, to root inside: the code runs as that root of gVisor's kernel, with no
    // capabilities and no_new_privs, so that it owns its /scratch (the agent's files) like the sandbox user does as root.
    public GvisorRuntime(RuntimeOptions options)
        : base(Libc.IsRoot || options is null ? options! : options with { SandboxUid = 0, SandboxGid = 0 })
    {
    }

    public override string Name => RuntimeName;

    public override bool CanKeep => true;

    public override IsolationLevel Isolation => IsolationLevel.Strong;

    /// <summary>runsc's state directory for our sandboxes (runsc --root).</summary>
    public string StateRoot => WorkRootPaths.RunscStateRoot(Options);

    /// <summary>Ids of the sandboxes booted and waiting for an execution.</summary>
    public IReadOnlyList<string> WarmSandboxIds
    {
        get
        {
            lock (poolLock)
            {
                return [.. warm.Select(w => w.Id)];
            }
        }
    }

    /// <summary>Executions that ran in a warm sandbox since this runtime was created.</summary>
    public long WarmClaims => Interlocked.Read(ref warmClaims);

    /// <summary>Starts booting the warm sandboxes now rather than at the first execution.</summary>
    public void StartWarming() => Refill();

    /// <summary>Waits until the pool holds its configured number of warm sandboxes (or the timeout passes).</summary>
    public async Task<bool> WaitWarmAsync(TimeSpan timeout, CancellationToken ct)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            lock (poolLock)
            {
                PruneStale();
                if (warm.Count >= Options.WarmGvisorSandboxes)
                {
                    return true;
                }
            }

            Refill();
            if (Stopwatch.GetTimestamp() > deadline)
            {
                return false;
            }

            await Task.Delay(10, ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        List<SandboxContext> left;
        List<Task> running;
        lock (poolLock)
        {
            disposed = true;
            left = [.. warm];
            warm.Clear();
            running = [.. boots];
        }

        // A boot that finishes now destroys its sandbox itself.
        await Task.WhenAll(running);

        foreach (var context in left)
        {
            await DestroyAsync(context);
        }
    }

    protected override Task<string?> CheckPrerequisitesAsync(CancellationToken ct)
    {
        if (!File.Exists(Runsc))
        {
            return Task.FromResult<string?>("gVisor (runsc) is not installed");
        }

        if (!Libc.IsRoot && !File.Exists("/proc/self/ns/user"))
        {
            return Task.FromResult<string?>("runsc --rootless needs user namespaces, which this kernel lacks");
        }

        return Task.FromResult<string?>(null);
    }

    // An ordinary user's agent runs runsc --rootless without cgroups: the limits are gVisor's own rlimits of the code
    // (its sentry enforces them; the host never sees the code's processes).
    protected override bool RequiresCgroups => Libc.IsRoot;

    // Rootless, the sentry and gofer run as the agent's user, who owns the scratch.
    protected override bool RunsAsSandboxUser => Libc.IsRoot;

    protected override string RlimitEnforcement => GvisorRlimitDescription;

    private protected override int CgroupPidsLimit(ExecutionSpec spec) => Math.Max(512, spec.MaxProcesses * 8);

    private protected override long CgroupMemoryBytes(ExecutionSpec spec) => ((long)spec.MemoryMiB + SentryOverheadMiB) * 1024 * 1024;

    private protected override SandboxContext? ClaimWarm(ExecutionSpec spec)
    {
        if (Options.WarmGvisorSandboxes <= 0)
        {
            return null;
        }

        SandboxContext? claimed = null;
        lock (poolLock)
        {
            PruneStale();
            warm.TryDequeue(out claimed);
        }

        if (claimed is null)
        {
            // This execution boots its own; the pool refills meanwhile.
            Refill();
            return null;
        }

        if (Options.Shield is not null && !claimed.ShieldTraced && (spec.Shield is not null || Options.ShieldPolicy is not null))
        {
            // Booted before Shield's monitor listened: its trace points go nowhere, so a watched execution boots its own.
            _ = DestroyAsync(claimed);
            Refill();
            return null;
        }

        try
        {
            // The boot's own memory peak and CPU time are not the execution's.
            claimed.Cgroup!.SetLimits(CgroupMemoryBytes(spec), CgroupPidsLimit(spec), spec.Cpu);
            claimed.Cgroup.ResetCounters();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // E.g. a memory limit below what the idle sandbox already uses: boot a fitting one instead.
            _ = DestroyAsync(claimed);
            Refill();
            return null;
        }

        Interlocked.Increment(ref warmClaims);
        return new SandboxContext(spec, Options, claimed.Id)
        {
            Warm = true,
            ShieldTraced = claimed.ShieldTraced,
            Claimed = claimed.Claimed,
            Cgroup = claimed.Cgroup,
            Scratch = claimed.Scratch,
            BundleDirectory = claimed.BundleDirectory,
            Starter = claimed.Starter,
        };
    }

    private protected override async Task<ChildOutcome> RunCodeAsync(SandboxContext context, Func<Task> stopSandbox, CancellationToken ct)
    {
        if (!context.Warm)
        {
            return await base.RunCodeAsync(context, stopSandbox, ct);
        }

        // The first process, a bash (dash has no `ulimit -u`) under the sandbox's seccomp filter (inherited by all it starts), reads the
        // go-ahead and then sources this script. The exit code goes into a file written now, so the shell only
        // overwrites its bytes in place: a code that filled /scratch cannot keep it from being recorded.
        // Written through descriptors, never following a link, as anything else put into a scratch.
        var scratch = context.Scratch!;
        var exitFile = Path.Combine(scratch.HostPath, ".sandstorm-exit-" + context.Id);
        scratch.WriteFile(".sandstorm-exit-" + context.Id, "    \n", context.SandboxUser);
        scratch.WriteFile(RunScript(context.Id), WarmRunScript(context), null);
        var starter = context.Starter!;
        try
        {
            return await ChildRunner.RunStartedAsync(
                starter.StandardInput,
                starter.StandardOutput.BaseStream,
                starter.StandardError.BaseStream,
                () => ReadExitCode(exitFile),
                context,
                stopSandbox,
                ct);
        }
        finally
        {
            // The replacement boots once this code has run, not beside it: a boot is ~450 ms of CPU.
            Refill();
        }
    }

    private static string RunScript(string id) => ".sandstorm-run-" + id;

    // What the warm sandbox's shell sources: the execution's own process limit and environment, then the code.
    private string WarmRunScript(SandboxContext context)
    {
        var spec = context.Spec;
        var script = new System.Text.StringBuilder();
        script.Append("rm -f ").Append(ShellQuote("/scratch/" + RunScript(context.Id))).Append('\n');
        // The shell itself runs as the same user, so it counts against RLIMIT_NPROC too.
        script.Append("ulimit -u ").Append(Math.Min(spec.MaxProcesses + 1, WarmProcessCeiling).ToString(CultureInfo.InvariantCulture)).Append(" || exit 125\n");
        foreach (var (key, value) in SandboxEnvironment(context, "/scratch"))
        {
            script.Append("export ").Append(ShellQuote(key + "=" + value)).Append('\n');
        }

        script.Append(string.Join(' ', OciBundle.Command(spec).Select(ShellQuote))).Append(" </dev/null\n");
        script.Append("printf '%4d' $? 1<> ").Append(ShellQuote("/scratch/.sandstorm-exit-" + context.Id)).Append('\n');
        return script.ToString();
    }

    // The shell's own first line: wait for the go-ahead, then run what the host wrote.
    private static string WarmShell(string id) =>
        "IFS= read -r go && [ \"$go\" = " + ChildRunner.Go + " ] || exit 125\n. " + ShellQuote("/scratch/" + RunScript(id)) + "\n";

    private static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    // The file lies in /scratch, where the code could have replaced it with a symlink to a host file or a FIFO.
    private static int? ReadExitCode(string path) =>
        Libc.ReadUntrusted(path, 16) is { } bytes
        && int.TryParse(System.Text.Encoding.ASCII.GetString(bytes).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var code)
            ? code
            : null;

    private protected override Task<Launch> PrepareAsync(SandboxContext context, CancellationToken ct)
    {
        var env = SandboxEnvironment(context, context.WorkDirectory);
        var bundle = OciBundle.Write(
            context,
            OciBundle.Command(context.Spec),
            env,
            cgroupsPath: null,
            ProcessRlimits(context),
            refuseClone3: false);
        return Task.FromResult(new Launch
        {
            Command = Runsc,
            Arguments = [.. GlobalFlags, "run", "--bundle", bundle, context.Id],
            Environment = HostEnvironment(context),
            WorkingDirectory = bundle,
        });
    }

    private const string GvisorRlimitDescription =
        "memory: RLIMIT_AS per process inside gVisor (not a sandbox total; the sentry's own memory is unbounded); " +
        "pids: RLIMIT_NPROC inside gVisor; cpu: RLIMIT_CPU seconds per process inside gVisor (no share of the cores); file size: RLIMIT_FSIZE";

    // With cgroups, only the process count is an rlimit (the cgroup bounds the sentry and the code as a whole); without
    // them, gVisor's own rlimits are all there is: they hold for the code, not for the sentry and gofer around it.
    private static List<System.Text.Json.Nodes.JsonObject> ProcessRlimits(SandboxContext context)
    {
        var spec = context.Spec;
        if (context.Cgroup is not null)
        {
            return [OciBundle.Rlimit("RLIMIT_NPROC", spec.MaxProcesses)];
        }

        return
        [
            OciBundle.Rlimit("RLIMIT_NPROC", spec.MaxProcesses),
            OciBundle.Rlimit("RLIMIT_AS", (long)spec.MemoryMiB * 1024 * 1024),
            OciBundle.Rlimit("RLIMIT_CPU", SandboxRlimits.CpuSeconds(spec)),
            OciBundle.Rlimit("RLIMIT_FSIZE", (long)context.Options.ScratchSizeMiB * 1024 * 1024),
        ];
    }

    // runsc's own cgroup handling is off: the launcher already placed runsc (and so the sentry and gofer) in the
    // execution's limited cgroup, which bounds them as a whole.
    // --file-access-mounts=exclusive lets the sentry cache what it looked up in the bind mounts (/usr, the /etc files,
    // /scratch) instead of asking the gofer again on every lookup: nothing but the sandbox changes them while it runs
    // (the host writes /scratch only before the code starts, and a warm sandbox has looked nothing up in it yet).
    // Interpreter start-up is mostly such lookups: about 9% less wall time for python's hello on these machines.
    // It is a caching choice, not an isolation one.
    // With Shield, every sandbox reports its trace points to the monitor (runsc's runtime monitoring; see
    // Shield/GvisorTraceSource) and does not boot if the monitor is not listening.
    // An ordinary user's agent adds --rootless: runsc then maps that user to root in its own user namespace and runs
    // the sentry and gofer as it (no chroot to a root-owned directory, no setuid).
    private string[] GlobalFlags => (Options.Shield?.GvisorInitConfig, Libc.IsRoot) switch
    {
        ({ } trace, true) => ["--root", StateRoot, "--platform=ptrace", "--network=none", "--oci-seccomp", "--ignore-cgroups", "--file-access-mounts=exclusive", "--pod-init-config=" + trace],
        (_, true) => ["--root", StateRoot, "--platform=ptrace", "--network=none", "--oci-seccomp", "--ignore-cgroups", "--file-access-mounts=exclusive"],
        _ => ["--rootless", "--root", StateRoot, "--platform=ptrace", "--network=none", "--oci-seccomp", "--ignore-cgroups", "--file-access-mounts=exclusive"],
    };

    // runsc keeps <id>_sandbox:<id>.state (and a lock file) under its root while a sandbox exists; `runsc run`
    // destroys the sandbox and removes them when the container exits.
    private protected override bool HasRuntimeState(SandboxContext context) =>
        Directory.Exists(StateRoot) && Directory.EnumerateFileSystemEntries(StateRoot, context.Id + "_*").Any();

    // A warm sandbox is stopped by the cgroup kill that follows: its sentry and gofer were born in it.
    private protected override async Task StopRuntimeAsync(SandboxContext context)
    {
        if (!context.Warm)
        {
            await RunToolAsync(Runsc, [.. GlobalFlags, "kill", "--all", context.Id, "KILL"], TimeSpan.FromSeconds(10));
        }
    }

    // Once its processes are gone, all that is left of a warm sandbox is runsc's record of it: removing that is
    // what `runsc delete` would do, without starting the runsc binary once more.
    private protected override async Task DeleteRuntimeStateAsync(SandboxContext context)
    {
        if (context.Warm && context.Cgroup?.IsEmpty() == true)
        {
            WorkRootPaths.DeleteRunscState(Options, context.Id);

            return;
        }

        await RunToolAsync(Runsc, [.. GlobalFlags, "delete", "--force", context.Id], TimeSpan.FromSeconds(10));
    }

    // Drops (and destroys in the background) warm sandboxes that ended on their own. Holds poolLock.
    private void PruneStale()
    {
        for (var i = warm.Count; i > 0; i--)
        {
            var entry = warm.Dequeue();
            if (!entry.Cgroup!.IsEmpty())
            {
                warm.Enqueue(entry);
            }
            else
            {
                _ = DestroyAsync(entry);
            }
        }
    }

    private void Refill()
    {
        if (!SandboxCgroup.IsAvailable(Options, out _))
        {
            // A warm sandbox is held and killed through its cgroup: without cgroups every execution boots its own.
            return;
        }

        var start = 0;
        lock (poolLock)
        {
            if (disposed)
            {
                return;
            }

            start = Math.Max(0, Options.WarmGvisorSandboxes - warm.Count - booting);
            booting += start;
        }

        lock (poolLock)
        {
            boots.RemoveAll(t => t.IsCompleted);
            for (var i = 0; i < start; i++)
            {
                boots.Add(Task.Run(BootWarmAsync));
            }
        }
    }

    private async Task BootWarmAsync()
    {
        var id = WarmPrefix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        var context = new SandboxContext(WarmSpec, Options, id) { Warm = true, ShieldTraced = Options.Shield?.GvisorInitConfig is not null };
        var ready = false;
        try
        {
            // Owned like any execution, until the sandbox is destroyed or its execution cleaned up.
            await ClaimAsync(context);

            context.Cgroup = SandboxCgroup.Create(Options, context.Id, CgroupMemoryBytes(WarmSpec), CgroupPidsLimit(WarmSpec), WarmSpec.Cpu);
            context.Scratch = Scratch.CreateEmpty(Options, context.Id, context.SandboxUser);
            var bundle = OciBundle.Write(
                context,
                ["/bin/bash", "-c", WarmShell(context.Id)],
                SandboxEnvironment(context, "/scratch"),
                cgroupsPath: null,
                [OciBundle.Rlimit("RLIMIT_NPROC", WarmProcessCeiling)],
                refuseClone3: false);

            // `runsc create` hands its stdio pipes to the sandbox's first process, which keeps them after create exits.
            // It is born in the sandbox's cgroup, and so are the sentry and gofer it starts.
            var psi = new ProcessStartInfo(Runsc)
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = bundle,
            };
            foreach (var argument in (string[])[.. GlobalFlags, "create", "--bundle", bundle, context.Id])
            {
                psi.ArgumentList.Add(argument);
            }

            psi.Environment.Clear();
            foreach (var (key, value) in HostEnvironment(context))
            {
                psi.Environment[key] = value;
            }

            var starter = context.Starter = new Process { StartInfo = psi };
            await Spawner.StartAsync(starter, context.Cgroup);
            using (var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            {
                await starter.WaitForExitAsync(limit.Token);
            }

            if (starter.ExitCode != 0)
            {
                throw new InvalidOperationException($"runsc create exited with {starter.ExitCode}");
            }

            var (exit, output) = await RunToolAsync(Runsc, [.. GlobalFlags, "start", context.Id], TimeSpan.FromSeconds(60));
            if (exit != 0)
            {
                throw new InvalidOperationException($"runsc start exited with {exit}: {output}");
            }

            lock (poolLock)
            {
                if (!disposed)
                {
                    warm.Enqueue(context);
                    ready = true;
                }
            }
        }
        catch (Exception)
        {
            // The pool is an optimisation: an execution without a warm sandbox boots its own, and the next claim
            // tries to refill again.
        }
        finally
        {
            lock (poolLock)
            {
                booting--;
            }

            if (!ready)
            {
                // Also disposes the starter.
                await DestroyAsync(context);
            }
        }
    }

    private async Task DestroyAsync(SandboxContext context)
    {
        try
        {
            await CleanupAsync(context);
        }
        catch (AggregateException)
        {
            // Left for the next sweep.
        }
    }
}
