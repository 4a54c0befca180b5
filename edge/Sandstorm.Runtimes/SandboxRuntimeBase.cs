using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// The execution skeleton every host runtime shares: per-execution cgroup and scratch, the launcher, the
/// output caps and timeout, and a cleanup that runs whatever happened. Runtimes supply the command line.
/// </summary>
public abstract partial class SandboxRuntimeBase : ISandboxRuntime
{
    /// <summary>Environment variable set on every process of a sandbox (host side), so leftovers can be found.</summary>
    public const string MarkerVariable = "SANDSTORM_SANDBOX_ID";

    // Probing runs a real sandbox, so it happens once per process per runtime and work root.
    private static readonly ConcurrentDictionary<string, Lazy<Task<RuntimeProbe>>> Probes = new();

    protected SandboxRuntimeBase(RuntimeOptions options)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
    }

    public abstract string Name { get; }

    public abstract IsolationLevel Isolation { get; }

    protected RuntimeOptions Options { get; }

    /// <summary>
    /// True when this runtime cannot enforce its limits without cgroups. Runtimes that can fall back to rlimits inside the
    /// sandbox (<see cref="RlimitEnforcement"/>) say false where cgroups cannot be had: an agent started as an ordinary user.
    /// </summary>
    protected virtual bool RequiresCgroups => true;

    /// <summary>
    /// How memory, pids and CPU are bounded when this runtime runs without cgroups (shown by <c>sandstorm-edge check</c>);
    /// null for a runtime that refuses to run without them.
    /// </summary>
    protected virtual string? RlimitEnforcement => null;

    /// <summary>How the limits of this runtime's executions are enforced on this machine now (cgroups, rlimits, or neither).</summary>
    public virtual string LimitEnforcement => SandboxCgroup.IsAvailable(Options, out var reason)
        ? $"memory, pids, cpu: cgroup v1 under {Options.CgroupRoot}/{{memory,pids,cpu}}/{Options.CgroupParent}"
        : RequiresCgroups || RlimitEnforcement is null
            ? $"none: needs cgroup v1 ({reason})"
            : RlimitEnforcement + $" (no cgroups: {reason})";

    /// <summary>True when the code runs as the unprivileged sandbox user, who must own <c>/scratch</c>.</summary>
    protected virtual bool RunsAsSandboxUser => true;

    public Task<RuntimeProbe> ProbeAsync(CancellationToken ct) =>
        Probes.GetOrAdd(Name + "|" + Options.WorkRoot + "|" + Options.UseCgroups, _ => new Lazy<Task<RuntimeProbe>>(() => ProbeOnceAsync())).Value.WaitAsync(ct);

    public async Task<ExecutionResult> ExecuteAsync(ExecutionSpec spec, CancellationToken ct)
    {
        Validate(spec);
        var cgroups = SandboxCgroup.IsAvailable(Options, out var noCgroupReason);
        if (!cgroups && RequiresCgroups)
        {
            throw new InvalidOperationException($"runtime '{Name}' needs cgroup v1 limits: {noCgroupReason}");
        }

        var context = (cgroups ? ClaimWarm(spec) : null) ?? new SandboxContext(spec, Options);
        RunningSandbox? running = null;
        try
        {
            if (context.Warm)
            {
                // Cgroup and scratch came with the warm sandbox (limits already set for this spec).
                context.Scratch!.Populate(spec, ScratchOwner(context));
            }
            else
            {
                await ClaimAsync(context);
                if (cgroups)
                {
                    context.Cgroup = SandboxCgroup.Create(Options, context.Id, CgroupMemoryBytes(spec), CgroupPidsLimit(spec), spec.Cpu);
                }

                AssignSandboxUser(context);
                context.Scratch = Scratch.Create(Options, context.Id, spec, ScratchOwner(context));
            }

            // Findable by its id (and pids) from here on, so an outside alert can reach and kill it (Falco).
            running = RunningSandboxes.Register(context.Id, Name, kept: false, spec.RunId, spec.TenantId, () => KillForShieldAsync(context));

            // Shield watches from before the first process starts until the code has ended (see Shield/ShieldMonitor).
            var (shield, unwatched) = await WatchSandboxAsync(context, ct);
            ChildOutcome outcome;
            try
            {
                outcome = await RunCodeAsync(context, () => StopAsync(context), ct);
            }
            finally
            {
                if (shield is not null)
                {
                    await shield.DisposeAsync();
                }
            }

            ct.ThrowIfCancellationRequested();

            long cpuMs = 0, peak = 0;
            var oom = false;
            if (context.Cgroup is not null)
            {
                (cpuMs, peak, oom) = context.Cgroup.ReadStats();
                // Some runtimes report the kill only as exit 137; the failure counter is the evidence.
                oom |= outcome.ExitCode == 137 && context.Cgroup.MemoryLimitHit();
            }

            if (outcome.Guest is { } guest)
            {
                // A microVM's code runs under the guest kernel's limits: its own accounting is the one that describes it.
                (cpuMs, peak, oom) = guest;
            }

            return new ExecutionResult
            {
                Runtime = Name,
                Stdout = Decode(outcome.Stdout),
                Stderr = Decode(outcome.Stderr),
                StdoutTruncated = outcome.StdoutTruncated,
                StderrTruncated = outcome.StderrTruncated,
                ExitCode = outcome.ExitCode,
                WallTimeMs = (long)outcome.WallTime.TotalMilliseconds,
                CpuTimeMs = cpuMs,
                PeakMemoryBytes = peak,
                OomKilled = oom && !outcome.TimedOut,
                TimedOut = outcome.TimedOut,
                ExecutionId = context.Id,
                Shield = ShieldReportOf(spec, shield, unwatched, running, outcome.WallTime),
            };
        }
        finally
        {
            if (running is not null)
            {
                RunningSandboxes.Unregister(running);
            }

            await CleanupAsync(context);
        }
    }

    /// <summary>
    /// Starts Shield's watch of an execution: with the policy of <see cref="RuntimeOptions.ShieldPolicy"/>, else the one its
    /// spec asks for (none: not watched). Returns the watch, or why a Shield execution could not be watched.
    /// </summary>
    private async Task<(Shield.ShieldWatch? Watch, string? Unwatched)> WatchSandboxAsync(SandboxContext context, CancellationToken ct)
    {
        var policy = Options.ShieldPolicy is { } choose ? choose(context.Spec) : Shield.ShieldPolicy.For(context.Spec.Shield);
        if (policy is null)
        {
            return (null, null);
        }

        if (Options.Shield is not { } monitor)
        {
            return (null, "this host runs no Shield monitor");
        }

        if (!monitor.Started.IsCompleted)
        {
            // A host that starts its monitor in the background: a Shield execution waits for it rather than run unwatched.
            try
            {
                await monitor.Started.WaitAsync(monitor.Options.StartTimeout, ct);
            }
            catch (TimeoutException)
            {
                return (null, "the Shield monitor did not start in time");
            }
        }

        var cgroup = context.Cgroup;
        var watch = monitor.Watch(new Shield.ShieldWatchRequest
        {
            SandboxId = context.Id,
            Runtime = Name,
            PidsCgroup = cgroup is null ? null : Path.Combine(Options.CgroupRoot, "pids", Options.CgroupParent, context.Id),
            Policy = policy,
            Quarantine = cgroup is null ? null : () => cgroup.KillAllAsync(Options.KillGrace, Options.TimeProvider),
        });
        context.Watched = watch.Coverage.Level != ShieldCoverageLevel.None;
        return (watch, null);
    }

    /// <summary>What Shield saw of an execution; null for one that was not a Shield run and that no alert named.</summary>
    private static ShieldReport? ShieldReportOf(ExecutionSpec spec, Shield.ShieldWatch? watch, string? unwatched, RunningSandbox running, TimeSpan wall)
    {
        var external = running.ExternalFindings;
        if (watch is null && spec.Shield is null && external.Count == 0)
        {
            return null;
        }

        var coverage = watch?.Coverage ?? Shield.ShieldCoverage.None(unwatched ?? "not a Shield run: the runtime monitor did not watch it");
        var findings = new List<ShieldFinding>();
        if (watch is not null)
        {
            var quarantining = watch.QuarantineFinding;
            var sequence = 0;
            foreach (var finding in watch.Findings)
            {
                findings.Add(Sandstorm.Shield.FindingContracts.ToContract(finding, $"{running.Id}-{++sequence}", ReferenceEquals(finding, quarantining)));
            }
        }

        findings.AddRange(external);
        return new ShieldReport
        {
            Coverage = coverage.Level,
            CoverageReason = coverage.Reason,
            MonitoredMs = coverage.Level == ShieldCoverageLevel.None ? 0 : (long)wall.TotalMilliseconds,
            Events = watch?.Events ?? 0,
            Quarantined = watch?.Quarantined == true || external.Any(f => f.Quarantined),
            Findings = findings,
        };
    }

    /// <summary>Kills every process of a sandbox for Shield (an outside alert): true once the last one is gone.</summary>
    private protected async Task<bool> KillForShieldAsync(SandboxContext context) =>
        context.Cgroup is { } cgroup && await cgroup.KillAllAsync(Options.KillGrace, Options.TimeProvider);

    /// <summary>Whether this runtime can keep a sandbox across many commands (<see cref="StartKeptAsync"/>).</summary>
    public virtual bool CanKeep => false;

    /// <summary>
    /// Starts a sandbox that lives across commands: the same namespaces, seccomp filter, cgroup limits and clean-up as an
    /// execution, its first process the init of <see cref="KeptSandbox"/>. Disposing it kills everything in it and
    /// removes what it left on the host.
    /// </summary>
    public async Task<KeptSandbox> StartKeptAsync(KeptSandboxSpec spec, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!CanKeep)
        {
            throw new NotSupportedException($"runtime '{Name}' cannot keep a sandbox across commands");
        }

        if (!SandboxCgroup.IsAvailable(Options, out var noCgroupReason))
        {
            throw new InvalidOperationException($"runtime '{Name}' needs cgroup v1 limits: {noCgroupReason}");
        }

        var execution = KeptExecution(spec);
        var context = new SandboxContext(execution, Options) { Kept = true, Command = SandboxInit.Command };
        KeptSandbox? sandbox = null;
        KeptShield? shield = null;
        try
        {
            await ClaimAsync(context);
            context.Cgroup = SandboxCgroup.Create(Options, context.Id, CgroupMemoryBytes(execution), CgroupPidsLimit(execution), execution.Cpu);
            AssignSandboxUser(context);
            context.Scratch = Scratch.CreateEmpty(Options, context.Id, ScratchOwner(context), spec.DiskMiB);
            var cgroup = context.Cgroup;

            // Findable and watched before its init starts, for its whole life (until it is disposed).
            shield = new KeptShield(
                RunningSandboxes.Register(context.Id, Name, kept: true, runId: null, spec.TenantId, () => KillForShieldAsync(context)),
                policy => WatchKept(context, policy));
            if (spec.Shield is { } policy)
            {
                await WaitForMonitorAsync(ct);
                shield.Start(policy);
            }

            var launch = await PrepareAsync(context, ct);
            var init = await ChildRunner.StartKeptAsync(launch, context);
            sandbox = new KeptSandbox(
                context.Id,
                Name,
                spec,
                shield,
                init,
                () => cgroup.ReadStats() is var (cpu, peak, _) ? (cpu, peak) : default,
                limits =>
                {
                    var limited = KeptExecution(limits);
                    cgroup.SetLimits(CgroupMemoryBytes(limited), CgroupPidsLimit(limited), limited.Cpu);
                },
                async () =>
                {
                    await StopAsync(context);
                    await CleanupAsync(context);
                });
            await sandbox.WaitReadyAsync(TimeSpan.FromSeconds(60));
            return sandbox;
        }
        catch
        {
            if (sandbox is not null)
            {
                await sandbox.DisposeAsync();
            }
            else
            {
                try
                {
                    await StopAsync(context);
                    await CleanupAsync(context);
                }
                catch (AggregateException)
                {
                    // Left for the next sweep of what dead owners left in the work root.
                }
                finally
                {
                    if (shield is not null)
                    {
                        await shield.DisposeAsync();
                    }
                }
            }

            throw;
        }
    }

    // Shield's watch of a kept sandbox; null without a monitor (its report then says none, and why).
    private Shield.ShieldWatch? WatchKept(SandboxContext context, Shield.ShieldPolicy policy)
    {
        if (Options.Shield is not { } monitor || context.Cgroup is not { } cgroup)
        {
            return null;
        }

        return monitor.Watch(new Shield.ShieldWatchRequest
        {
            SandboxId = context.Id,
            Runtime = Name,
            PidsCgroup = Path.Combine(Options.CgroupRoot, "pids", Options.CgroupParent, context.Id),
            Policy = policy,
            Quarantine = () => cgroup.KillAllAsync(Options.KillGrace, Options.TimeProvider),
        });
    }

    // A monitor started in the background is waited for (bounded) before a watch begins.
    private async Task WaitForMonitorAsync(CancellationToken ct)
    {
        if (Options.Shield is { Started.IsCompleted: false } monitor)
        {
            try
            {
                await monitor.Started.WaitAsync(monitor.Options.StartTimeout, ct);
            }
            catch (TimeoutException)
            {
                // The watch then reports coverage none, with the monitor's reason.
            }
        }
    }

    // The execution-shaped limits of a kept sandbox, which the runtime's cgroup and rlimit rules take.
    private ExecutionSpec KeptExecution(KeptSandboxSpec spec) => new()
    {
        Language = Languages.Bash,
        Code = "",
        Cpu = spec.Cpu,
        MemoryMiB = spec.MemoryMiB,
        MaxProcesses = spec.MaxProcesses,
        Timeout = Timeout.InfiniteTimeSpan,
        IsolationLevel = Isolation,
    };

    /// <summary>
    /// A sandbox started ahead of this execution, with its cgroup limits set for <paramref name="spec"/>, or null to
    /// start one now. Only called when cgroups are available.
    /// </summary>
    private protected virtual SandboxContext? ClaimWarm(ExecutionSpec spec) => null;

    /// <summary>Runs the code: by default the host command of <see cref="PrepareAsync"/>, through the launcher.</summary>
    private protected virtual async Task<ChildOutcome> RunCodeAsync(SandboxContext context, Func<Task> stopSandbox, CancellationToken ct)
    {
        var launch = await PrepareAsync(context, ct);
        return await ChildRunner.RunAsync(launch, context, stopSandbox, ct);
    }

    /// <summary>Writes what the runtime needs (bundle, config) and returns the host command.</summary>
    private protected abstract Task<Launch> PrepareAsync(SandboxContext context, CancellationToken ct);

    /// <summary>Checks prerequisites (binaries, privileges) before the trial run; null when they are met.</summary>
    protected abstract Task<string?> CheckPrerequisitesAsync(CancellationToken ct);

    /// <summary>Stops the runtime's own machinery (containers, sandboxes) after the main process ended or timed out.</summary>
    private protected virtual Task StopRuntimeAsync(SandboxContext context) => Task.CompletedTask;

    /// <summary>Removes the runtime's own state (container records) once every process is gone.</summary>
    private protected virtual Task DeleteRuntimeStateAsync(SandboxContext context) => Task.CompletedTask;

    /// <summary>
    /// Whether the runtime may still hold state for this execution (a container record). False means its foreground
    /// client already tore the sandbox down, so the kill and delete commands, each a full exec of the runtime's
    /// binary, are skipped; the cgroup kill still runs. Runtimes whose state cannot be checked cheaply keep true.
    /// </summary>
    private protected virtual bool HasRuntimeState(SandboxContext context) => true;

    /// <summary>Sets <see cref="SandboxContext.SandboxUser"/> before the scratch is made (by default the options' user).</summary>
    private protected virtual void AssignSandboxUser(SandboxContext context)
    {
    }

    /// <summary>Gives back what <see cref="AssignSandboxUser"/> took, once the execution is cleaned up.</summary>
    private protected virtual void ReleaseSandboxUser(SandboxContext context)
    {
    }

    /// <summary>Host pids limit; gVisor needs far more host threads than the sandbox has processes.</summary>
    private protected virtual int CgroupPidsLimit(ExecutionSpec spec) => spec.MaxProcesses;

    /// <summary>Host memory limit of the execution's cgroup.</summary>
    private protected virtual long CgroupMemoryBytes(ExecutionSpec spec) => (long)spec.MemoryMiB * 1024 * 1024;

    /// <summary>Who owns the scratch: the sandbox's user, or this process's user for runtimes that run the code as it.</summary>
    private protected (int Uid, int Gid)? ScratchOwner(SandboxContext context) => RunsAsSandboxUser ? context.SandboxUser : null;

    /// <summary>
    /// Environment of the runtime binaries themselves (bwrap, runc, runsc, podman) on the host: fixed, never the caller's
    /// variables, which the loader (<c>LD_PRELOAD</c>, <c>LD_DEBUG_OUTPUT</c>) and podman (<c>CONTAINER_HOST</c>,
    /// <c>STORAGE_OPTS</c>, <c>TMPDIR</c>) would honour outside the sandbox. Those reach the sandboxed code only, through
    /// the runtime's own channel (bwrap's <c>--setenv</c>, the OCI <c>process.env</c>, a file sourced inside). The marker
    /// is ours, so leftovers can still be found.
    /// </summary>
    private protected static Dictionary<string, string> HostEnvironment(SandboxContext context) => new(StringComparer.Ordinal)
    {
        ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin",
        ["HOME"] = HostHome,
        ["LANG"] = "C.UTF-8",
        [MarkerVariable] = context.Id,
    };

    // This process's own home (podman reads its configuration under it), as this process was started with it.
    private static readonly string HostHome = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) is { Length: > 0 } home ? home : "/";

    /// <summary>Environment of the sandboxed code: a fixed minimal base, the caller's variables, the marker.</summary>
    private protected Dictionary<string, string> SandboxEnvironment(SandboxContext context, string home)
    {
        var env = BaseEnvironment(home);
        if (context.Spec.Environment is not null)
        {
            foreach (var (key, value) in context.Spec.Environment)
            {
                env[key] = value;
            }
        }

        env[MarkerVariable] = context.Id;
        return env;
    }

    /// <summary>The fixed environment every sandboxed program starts with (before the caller's variables).</summary>
    public static Dictionary<string, string> BaseEnvironment(string home) => new(StringComparer.Ordinal)
    {
        ["PATH"] = "/usr/local/bin:/usr/bin:/bin",
        ["HOME"] = home,
        ["TMPDIR"] = "/tmp",
        ["LANG"] = "C.UTF-8",
        ["PYTHONDONTWRITEBYTECODE"] = "1",
    };

    /// <summary>Interpreter command line for the main file at the given directory.</summary>
    private protected static List<string> CodeCommand(ExecutionSpec spec, string directory)
    {
        var (command, arguments) = Languages.Interpreter(spec.Language);
        return [command, .. arguments, directory + "/" + Languages.FileToRun(spec)];
    }

    /// <summary>Runs a helper command on the host (runc/runsc/podman management), bounded in time, output discarded past 64 KiB.</summary>
    private protected static async Task<(int ExitCode, string Output)> RunToolAsync(string file, IEnumerable<string> arguments, TimeSpan timeout, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        if (environment is not null)
        {
            // Exactly these variables, none of this process's.
            psi.Environment.Clear();
            foreach (var (key, value) in environment)
            {
                psi.Environment[key] = value;
            }
        }

        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        using var process = System.Diagnostics.Process.Start(psi)!;
        process.StandardInput.Close();
        using var abort = new CancellationTokenSource(timeout);
        var output = BoundedOutput.ReadAsync(process.StandardOutput.BaseStream, 64 * 1024, abort.Token);
        var error = BoundedOutput.ReadAsync(process.StandardError.BaseStream, 64 * 1024, abort.Token);
        try
        {
            await process.WaitForExitAsync(abort.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
        }

        var text = Decode((await output).Bytes) + Decode((await error).Bytes);
        return (process.ExitCode, text.Trim());
    }

    private protected async Task StopAsync(SandboxContext context)
    {
        try
        {
            if (HasRuntimeState(context))
            {
                await StopRuntimeAsync(context);
            }
        }
        finally
        {
            if (context.Cgroup is not null)
            {
                await context.Cgroup.KillAllAsync(Options.KillGrace, Options.TimeProvider);
            }
        }
    }

    /// <summary>
    /// Makes this process the owner of an execution before any of its state exists (see <see cref="Orphans"/>); before
    /// this process's first execution in the work root, what dead processes left there is swept.
    /// </summary>
    private protected async Task ClaimAsync(SandboxContext context)
    {
        WorkRoot.EnsurePrivate(Options);
        await Orphans.SweepOnceAsync(Options);
        Orphans.Claim(Options, context.Id);
        context.Claimed = true;
    }

    private protected async Task CleanupAsync(SandboxContext context)
    {
        // Every step runs even if an earlier one failed: leaving a cgroup, mount or container behind is worse than a late error.
        List<Exception>? errors = null;
        void Try(Action step)
        {
            try
            {
                step();
            }
            catch (Exception e)
            {
                (errors ??= []).Add(e);
            }
        }

        if (context.Cgroup is not null)
        {
            try
            {
                await context.Cgroup.KillAllAsync(Options.KillGrace, Options.TimeProvider);
            }
            catch (Exception e)
            {
                (errors ??= []).Add(e);
            }
        }

        try
        {
            if (HasRuntimeState(context))
            {
                await DeleteRuntimeStateAsync(context);
            }
        }
        catch (Exception e)
        {
            (errors ??= []).Add(e);
        }

        Try(() => context.Starter?.Dispose());
        Try(() => context.Cgroup?.Remove());
        Try(() => context.Scratch?.Remove());
        Try(() => context.PrivateRoot?.Remove());
        Try(() => WorkRootPaths.DeleteDirectory(context.BundleDirectory));
        Try(() => ReleaseSandboxUser(context));
        if (errors is not null)
        {
            // The owner record stays: once this process is gone, the next one in the work root tries again.
            throw new AggregateException($"cleanup of sandbox {context.Id} ({Name}) failed", errors);
        }

        if (context.Claimed)
        {
            Orphans.Release(Options, context.Id);
        }
    }

    private async Task<RuntimeProbe> ProbeOnceAsync()
    {
        try
        {
            if (WorkRoot.Problem(Options) is { } workRoot)
            {
                return RuntimeProbe.NotWorking(workRoot);
            }

            var missing = await CheckPrerequisitesAsync(CancellationToken.None);
            if (missing is not null)
            {
                return RuntimeProbe.NotWorking(missing);
            }

            if (RequiresCgroups && !SandboxCgroup.IsAvailable(Options, out var reason))
            {
                return RuntimeProbe.NotWorking($"needs cgroup v1 limits: {reason}");
            }

            var limits = LimitEnforcement;
            var result = await ExecuteAsync(
                new ExecutionSpec { Language = Languages.Bash, Code = "echo sandstorm-probe", MemoryMiB = 256, Timeout = TimeSpan.FromSeconds(30), IsolationLevel = Isolation },
                CancellationToken.None);
            return result.ExitCode == 0 && result.Stdout.Trim() == "sandstorm-probe"
                ? RuntimeProbe.Working with { Limits = limits }
                : RuntimeProbe.NotWorking($"trial run failed (exit {result.ExitCode?.ToString() ?? "none"}): {Shorten(result.Stderr)}");
        }
        catch (Exception e)
        {
            return RuntimeProbe.NotWorking($"trial run failed: {Shorten(e.Message)}");
        }
    }

    private static void Validate(ExecutionSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (Languages.Unavailable(spec.Language) is { } unavailable)
        {
            throw new ArgumentException(unavailable, nameof(spec));
        }

        if (spec.EntryPoint is { } entry && (spec.Files is null || !spec.Files.ContainsKey(entry)))
        {
            throw new ArgumentException($"entry point '{entry}' is not among the files", nameof(spec));
        }

        if (spec.MemoryMiB < 16 || spec.Timeout <= TimeSpan.Zero || spec.OutputLimitBytes < 0 || spec.MaxProcesses < 1 || spec.Cpu < 0)
        {
            throw new ArgumentException("limits out of range: memory ≥ 16 MiB, timeout > 0, output limit ≥ 0, max processes ≥ 1, cpu ≥ 0", nameof(spec));
        }

        if (spec.Environment is not null)
        {
            foreach (var key in spec.Environment.Keys)
            {
                if (!EnvironmentName().IsMatch(key) || key == MarkerVariable)
                {
                    throw new ArgumentException($"environment variable name '{key}' is not allowed", nameof(spec));
                }
            }

            // No environment can hold a NUL, and bwrap reads the variables NUL-separated: one would end the value early.
            if (spec.Environment.Values.Any(v => v is null || v.Contains('\0', StringComparison.Ordinal)))
            {
                throw new ArgumentException("environment variable values must not be null or contain NUL characters", nameof(spec));
            }
        }
    }

    private static string Decode(byte[] bytes) => Encoding.UTF8.GetString(bytes);

    private static string Shorten(string text)
    {
        text = text.Trim().ReplaceLineEndings(" ");
        return text.Length <= 300 ? text : text[..300] + "…";
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex EnvironmentName();
}
