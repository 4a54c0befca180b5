namespace Sandstorm.Runtimes.Shield;

/// <summary>Where the monitor looks and how it runs; defaults match <see cref="RuntimeOptions"/>'s.</summary>
public sealed record ShieldMonitorOptions
{
    /// <summary>Directory for the monitor's own files (bpftrace program, gVisor trace socket and configuration).</summary>
    public string WorkRoot { get; init; } = Path.Combine(Path.GetTempPath(), "sandstorm", "shield");

    /// <summary>Mount point of the cgroup v1 hierarchies (the <c>pids</c> one identifies sandboxes).</summary>
    public string CgroupRoot { get; init; } = "/sys/fs/cgroup";

    /// <summary>Parent cgroup of the executions (<see cref="RuntimeOptions.CgroupParent"/>).</summary>
    public string CgroupParent { get; init; } = "sandstorm";

    public string BpftracePath { get; init; } = "/usr/bin/bpftrace";

    public string TracefsPath { get; init; } = "/sys/kernel/tracing";

    /// <summary>Whether gVisor sandboxes report through runsc's runtime monitoring (a trace session with a remote sink).</summary>
    public bool GvisorTrace { get; init; } = true;

    /// <summary>Window over which process creations are counted for the derived <c>fork_storm</c> event.</summary>
    public TimeSpan ForkWindow { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Forks within the window below which no <c>fork_storm</c> event is derived at all.</summary>
    public int ForkFloor { get; init; } = 100;

    /// <summary>How often the kernel's fork counts are read.</summary>
    public TimeSpan ForkInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// On a kernel without tracepoints for the module syscalls (one built without module support, like these VMs'), trace
    /// them through <c>raw_syscalls:sys_exit</c>, a probe that then runs on every syscall of the host: about 0.5 µs each
    /// here, +40% for a syscall-bound program anywhere on the machine. Off by default; on such a kernel nothing can be
    /// loaded anyway, and the exec of insmod/modprobe is still seen.
    /// </summary>
    public bool RawModuleSyscalls { get; init; }

    /// <summary>How long to wait for bpftrace to compile and attach its probes.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(60);

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The options for a runtime's work root and cgroup parent.</summary>
    public static ShieldMonitorOptions For(RuntimeOptions runtime) => new()
    {
        WorkRoot = Path.Combine(runtime.WorkRoot, "shield"),
        CgroupRoot = runtime.CgroupRoot,
        CgroupParent = runtime.CgroupParent,
        TimeProvider = runtime.TimeProvider,
    };
}
