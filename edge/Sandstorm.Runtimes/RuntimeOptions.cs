using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes;

/// <summary>Where runtimes keep their per-execution state and the host-wide limits they apply.</summary>
public sealed record RuntimeOptions
{
    /// <summary>Root of scratch directories, OCI bundles, runtime state and the shared read-only rootfs template.</summary>
    public string WorkRoot { get; init; } = Path.Combine(Path.GetTempPath(), "sandstorm");

    /// <summary>Mount point of the cgroup v1 hierarchies (memory, pids, cpu, cpuacct).</summary>
    public string CgroupRoot { get; init; } = "/sys/fs/cgroup";

    /// <summary>Parent cgroup under each controller; each execution gets <c>&lt;parent&gt;/&lt;id&gt;</c>.</summary>
    public string CgroupParent { get; init; } = "sandstorm";

    /// <summary>False forces the degraded mode (rlimits and process groups only) even where cgroups are writable.</summary>
    public bool UseCgroups { get; init; } = true;

    /// <summary>Size cap of the writable <c>/scratch</c> (a tmpfs per execution when running as root).</summary>
    public int ScratchSizeMiB { get; init; } = 128;

    /// <summary>Size cap of the sandbox's <c>/tmp</c>.</summary>
    public int TmpSizeMiB { get; init; } = 64;

    /// <summary>Host uid/gid sandboxed code runs as (nobody).</summary>
    public int SandboxUid { get; init; } = 65534;

    public int SandboxGid { get; init; } = 65534;

    /// <summary>Grace period for a killed sandbox's processes and pipes to go away before cleanup gives up waiting.</summary>
    public TimeSpan KillGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// gVisor sandboxes kept booted ahead of demand (0: none). Worth it only in a long-running process (the agent):
    /// each execution then skips the sandbox boot, about two thirds of gVisor's start-up.
    /// </summary>
    public int WarmGvisorSandboxes { get; init; }

    /// <summary>
    /// Isolation <c>none</c> only: fork Python runs from a warm interpreter instead of starting one per run (a few
    /// milliseconds of CPU instead of tens). Runs setting a <c>PYTHON*</c> variable always start their own interpreter.
    /// </summary>
    public bool PythonForkServer { get; init; } = true;

    /// <summary>
    /// Where the qemu-microvm runtime keeps the kernel, initramfs and /usr image it builds from Debian packages; null:
    /// <c>microvm-image</c> under <see cref="WorkRoot"/>. Agents (or test runs) sharing one skip the build.
    /// </summary>
    public string? MicroVmImageRoot { get; init; }

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// Shield's runtime monitor (<see cref="Shield.ShieldMonitor.StartAsync(Shield.ShieldMonitorOptions, CancellationToken)"/>,
    /// or one made by <see cref="Shield.ShieldMonitor.Create"/> and started later); null: sandboxes are not monitored. A
    /// Shield execution is watched from before its first process starts until its clean-up, and quarantined (every process
    /// killed) on a finding at or above its policy's threshold.
    /// </summary>
    public Shield.ShieldMonitor? Shield { get; init; }

    /// <summary>
    /// The Shield policy of an execution (tenant rules, egress, threshold, callbacks); null from it: not monitored. Without
    /// it, an execution is monitored when its spec asks for it (<see cref="ExecutionSpec.Shield"/>, through
    /// <see cref="Shield.ShieldPolicy.For"/>), and not otherwise.
    /// </summary>
    public Func<ExecutionSpec, Shield.ShieldPolicy?>? ShieldPolicy { get; init; }
}
