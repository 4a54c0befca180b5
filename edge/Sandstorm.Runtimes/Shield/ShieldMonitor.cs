using System.Collections.Concurrent;
using Sandstorm.Core.Contracts;
using Sandstorm.Shield;

namespace Sandstorm.Runtimes.Shield;

/// <summary>
/// Shield's runtime monitor for this machine: one long-lived bpftrace process for host runtimes (bwrap, runc, podman,
/// process) and a listener for gVisor's runtime monitoring (runsc's trace points). Runtimes register each sandbox with
/// <see cref="Watch"/> before its first process starts and dispose the handle at clean-up; events are evaluated as
/// they arrive against the default rules plus the sandbox's tenant rules, and a finding at or above the threshold kills
/// the sandbox.
/// </summary>
public sealed class ShieldMonitor : IAsyncDisposable
{
    private readonly ConcurrentDictionary<ulong, ShieldWatch> byCgroup = new();
    private readonly ConcurrentDictionary<string, ShieldWatch> bySandbox = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int starting;
    private BpftraceSource? ebpf;
    private GvisorTraceSource? gvisor;

    private ShieldMonitor(ShieldMonitorOptions options)
    {
        Options = options;
        EbpfCoverage = ShieldCoverage.None("the Shield monitor has not started yet");
        GvisorCoverage = ShieldCoverage.None("the Shield monitor has not started yet");
        Forks = new ForkRateTracker(options.ForkWindow, options.ForkFloor);
    }

    public ShieldMonitorOptions Options { get; }

    /// <summary>What host runtimes (bwrap, runc, podman) get: full, or none with the reason (not root, no bpftrace, no tracefs...).</summary>
    public ShieldCoverage EbpfCoverage { get; private set; }

    /// <summary>What gVisor sandboxes get from runsc's runtime monitoring.</summary>
    public ShieldCoverage GvisorCoverage { get; private set; }

    /// <summary>Completes when <see cref="StartAsync(CancellationToken)"/> has finished (whatever coverage it found).</summary>
    public Task Started => started.Task;

    /// <summary>
    /// The <c>--pod-init-config</c> file runsc needs to report to this monitor, or null when gVisor is not monitored.
    /// Every runsc that boots a sandbox must be given it (and fails to boot if the monitor is not listening).
    /// </summary>
    public string? GvisorInitConfig => gvisor?.ConfigPath;

    /// <summary>Events lost before they reached the monitor (bpftrace's lost perf events plus gVisor's dropped points).</summary>
    public long DroppedEvents => (ebpf?.Dropped ?? 0) + (gvisor?.Dropped ?? 0);

    /// <summary>Events that belonged to no watched sandbox (a sandbox whose watch had ended, or one never watched).</summary>
    public long UnattributedEvents => Interlocked.Read(ref unattributed);

    private long unattributed;

    // A sandbox's last events are awaited this long at most when its watch ends.
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(1);

    internal ForkRateTracker Forks { get; }

    /// <summary>
    /// A monitor that is not started yet: every sandbox watched before <see cref="StartAsync(CancellationToken)"/> finishes
    /// gets coverage none (the reason says so). For hosts that build their runtimes before the monitor can attach.
    /// </summary>
    public static ShieldMonitor Create(ShieldMonitorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new ShieldMonitor(options);
    }

    /// <summary>
    /// Starts the monitor. Never throws for a machine that cannot monitor: the coverage properties then say none, and why.
    /// </summary>
    public static async Task<ShieldMonitor> StartAsync(ShieldMonitorOptions options, CancellationToken ct = default)
    {
        var monitor = Create(options);
        await monitor.StartAsync(ct);
        return monitor;
    }

    /// <summary>Attaches the sources (bpftrace, gVisor's trace socket); once per monitor, later calls wait for the first.</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        if (Interlocked.Exchange(ref starting, 1) != 0)
        {
            await Started.WaitAsync(ct);
            return;
        }

        try
        {
            Directory.CreateDirectory(Options.WorkRoot);
            var (bpf, reason) = await BpftraceSource.StartAsync(Options, Dispatch, DispatchForks, ct);
            if (bpf is not null)
            {
                ebpf = bpf;
                EbpfCoverage = new ShieldCoverage(
                    ShieldCoverageLevel.Full,
                    bpf.ModuleSyscallsSeen ? null : "module syscalls are not traced: this kernel has no tracepoints for them (no module support, so nothing can be loaded) and RawModuleSyscalls is off");
                bpf.Exited += why => EbpfCoverage = ShieldCoverage.None("bpftrace stopped: " + why);
            }
            else
            {
                EbpfCoverage = ShieldCoverage.None(reason!);
            }

            GvisorCoverage = ShieldCoverage.None("gVisor monitoring is off");
            if (Options.GvisorTrace)
            {
                try
                {
                    gvisor = GvisorTraceSource.Start(Options, Dispatch);
                    GvisorCoverage = new ShieldCoverage(
                        ShieldCoverageLevel.Partial,
                        "gVisor runtime monitoring (runsc trace points): execs with arguments, opens, connects, binds, uid/gid changes, forks; "
                        + "syscalls the sandbox's seccomp filter refuses (ptrace, mount, unshare, setns, bpf, module calls) are refused before any trace point and so are blocked but not reported; "
                        + "no stdin/stdout types (reverse shells are caught by command line only), no parent name; fork storms are not reached at the fork rates gVisor's ptrace platform allows");
                }
                catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or UnauthorizedAccessException)
                {
                    GvisorCoverage = ShieldCoverage.None("cannot listen for gVisor's trace points: " + e.Message);
                }
            }
        }
        finally
        {
            started.TrySetResult();
        }
    }

    /// <summary>The coverage a sandbox of <paramref name="runtime"/> gets here (before any cgroup check).</summary>
    public ShieldCoverage CoverageOf(string runtime) =>
        runtime == GvisorRuntime.RuntimeName ? GvisorCoverage
        : runtime == MicroVmRuntime.RuntimeName ? ShieldCoverage.None("the microVM's guest kernel is not traced")
        : EbpfCoverage;

    /// <summary>
    /// Starts watching one sandbox; call before its first process starts and dispose the handle at clean-up. The handle
    /// says what coverage the sandbox gets (none, with the reason, when it cannot be monitored).
    /// </summary>
    public ShieldWatch Watch(ShieldWatchRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var engine = RuleEngine.For(request.Policy.TenantRules, Options.TimeProvider);
        ShieldCoverage coverage;
        ulong cgroupId = 0;
        if (request.Runtime == GvisorRuntime.RuntimeName)
        {
            coverage = GvisorCoverage;
        }
        else if (ebpf is null || EbpfCoverage.Level == ShieldCoverageLevel.None)
        {
            coverage = EbpfCoverage;
        }
        else if (request.PidsCgroup is null)
        {
            coverage = ShieldCoverage.None("the sandbox has no cgroup to attribute its processes by");
        }
        else if (!string.Equals(Path.GetFullPath(Path.GetDirectoryName(request.PidsCgroup)!), Path.GetFullPath(ebpf.ParentDirectory), StringComparison.Ordinal))
        {
            coverage = ShieldCoverage.None($"the sandbox's cgroup is not under {ebpf.ParentDirectory}, the parent this monitor traces");
        }
        else if (ShieldNative.InodeOf(request.PidsCgroup) is not { } id)
        {
            coverage = ShieldCoverage.None($"cgroup {request.PidsCgroup} does not exist");
        }
        else
        {
            cgroupId = id;

            // The process runtime starts every watched run with an exec (never from its warm Python interpreter).
            coverage = EbpfCoverage;
        }

        Func<Task>? drain = coverage.Level == ShieldCoverageLevel.None ? null
            : request.Runtime == GvisorRuntime.RuntimeName ? () => gvisor!.DrainAsync(request.SandboxId, DrainTimeout)
            : () => ebpf!.DrainAsync(DrainTimeout);
        var watch = new ShieldWatch(request, coverage, engine, cgroupId, Unregister, drain);
        if (coverage.Level != ShieldCoverageLevel.None)
        {
            if (cgroupId != 0)
            {
                byCgroup[cgroupId] = watch;
            }

            bySandbox[request.SandboxId] = watch;
        }

        request.Policy.OnWatch?.Invoke(watch);
        return watch;
    }

    /// <summary>
    /// Waits until every event the kernel produced before this call was read and evaluated (a marker syscall on each
    /// CPU, since bpftrace reads one buffer per CPU), bounded by <paramref name="timeout"/>. Used before a watch ends,
    /// so the last moments of a sandbox are judged too.
    /// </summary>
    public Task DrainAsync(TimeSpan timeout) => ebpf?.DrainAsync(timeout) ?? Task.CompletedTask;

    private void Unregister(ShieldWatch watch)
    {
        if (watch.CgroupId != 0)
        {
            byCgroup.TryRemove(new KeyValuePair<ulong, ShieldWatch>(watch.CgroupId, watch));
            ebpf?.Forget(watch.CgroupId);
        }

        bySandbox.TryRemove(new KeyValuePair<string, ShieldWatch>(watch.SandboxId, watch));
        Forks.Remove(watch.SandboxId);
    }

    private void Dispatch(ulong cgroupId, ShieldEvent e)
    {
        if (byCgroup.TryGetValue(cgroupId, out var watch))
        {
            watch.Evaluate(e with { SandboxId = watch.SandboxId, EgressAllowed = watch.Request.Policy.EgressAllowed });
        }
        else
        {
            Interlocked.Increment(ref unattributed);
        }
    }

    private void Dispatch(string sandboxId, ShieldEvent e)
    {
        if (bySandbox.TryGetValue(sandboxId, out var watch))
        {
            var enriched = e with { SandboxId = watch.SandboxId, EgressAllowed = watch.Request.Policy.EgressAllowed };
            if (enriched.Type is "clone" or "fork" or "vfork")
            {
                DispatchForkCount(watch, 1, enriched.MonotonicTimestamp ?? System.Diagnostics.Stopwatch.GetTimestamp());
                return;
            }

            watch.Evaluate(enriched);
        }
        else
        {
            Interlocked.Increment(ref unattributed);
        }
    }

    private void DispatchForks(ulong cgroupId, long count, long monotonic)
    {
        if (byCgroup.TryGetValue(cgroupId, out var watch))
        {
            DispatchForkCount(watch, count, monotonic);
        }
    }

    private void DispatchForkCount(ShieldWatch watch, long count, long monotonic)
    {
        var now = Options.TimeProvider.GetUtcNow();
        if (Forks.Add(watch.SandboxId, count, monotonic, now) is { } storm)
        {
            watch.Evaluate(storm with { EgressAllowed = watch.Request.Policy.EgressAllowed });
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (ebpf is not null)
        {
            await ebpf.DisposeAsync();
        }

        gvisor?.Dispose();
    }
}
