namespace Sandstorm.Providers.Local;

/// <summary>How a host that runs tenant code on its own machine does it (section <c>Sandstorm:Local</c>).</summary>
public sealed class LocalExecutionOptions
{
    public const string Section = "Sandstorm:Local";

    /// <summary>
    /// Whether isolation <c>none</c> (a plain process as the host's user) is offered at all. The operator's decision; a
    /// tenant must also opt in. The local development host allows it; nothing else should.
    /// </summary>
    public bool AllowUnisolated { get; set; }

    /// <summary>Root of the runtimes' per-execution state; default: the runtimes' own (a private directory under the temp path).</summary>
    public string? WorkRoot { get; set; }

    /// <summary>Parent cgroup of this host's sandboxes under each v1 controller.</summary>
    public string CgroupParent { get; set; } = "sandstorm/local";

    /// <summary>
    /// Whether this host runs Shield's runtime monitor (bpftrace and gVisor's trace points) for <c>securityTier: shield</c>
    /// runs. On a machine where eBPF cannot run (not root, no bpftrace, no tracefs) it starts anyway and says coverage none.
    /// </summary>
    public bool Shield { get; set; } = true;

    /// <summary>
    /// Whether this host offers the QEMU microVM runtime (<c>maximum</c>) itself. Off by default: without a warm pool each
    /// run boots a guest (seconds under TCG, where there is no KVM), so <c>maximum</c> goes to an edge agent or a cloud.
    /// </summary>
    public bool MicroVm { get; set; }

    /// <summary>gVisor sandboxes kept booted ahead of demand, so a <c>strong</c> run skips the boot.</summary>
    public int WarmGvisorSandboxes { get; set; } = 1;

    /// <summary>Kept sandboxes started ahead of demand, per runtime (creating one then costs a claim, not a start).</summary>
    public Dictionary<string, int> WarmKeptSandboxes { get; set; } = new() { ["bwrap"] = 2, ["gvisor"] = 1 };

    /// <summary>Most processes of a kept sandbox, all its commands together.</summary>
    public int KeptMaxProcesses { get; set; } = 256;

    /// <summary>Size of a kept sandbox's home when the request does not say (and of the warm ones).</summary>
    public int KeptDiskMiB { get; set; } = 512;
}
