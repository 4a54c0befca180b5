using System.Globalization;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// The limits of a sandbox that has no cgroups (an agent started as an ordinary user, where cgroup v1 is not delegated):
/// rlimits set by the sandbox's first process (<c>prlimit</c>, from the read-only <c>/usr</c>) before it execs the code,
/// inherited by everything the code starts and impossible for it to raise (hard = soft).
/// </summary>
/// <remarks>
/// RLIMIT_NPROC counts per user <em>and user namespace</em> (kernel ucounts, 5.14 on), and each sandbox has a user
/// namespace of its own, so it bounds the sandbox's processes, not all of the agent user's. RLIMIT_DATA rather than
/// RLIMIT_AS: V8 reserves far more address space than it uses, and Node hangs at start-up under a tight RLIMIT_AS.
/// Weaker than cgroups: memory is per process (a sandbox may hold up to its process limit times its memory limit),
/// CPU is seconds per process rather than a share of the cores, and no peak-memory or CPU figure is measured.
/// </remarks>
internal static class SandboxRlimits
{
    public const string Prlimit = "/usr/bin/prlimit";

    /// <summary>What <c>sandstorm-edge check</c> says of the rlimit mode.</summary>
    public const string Description =
        "memory: RLIMIT_DATA per process (not a sandbox total); pids: RLIMIT_NPROC in the sandbox's own user namespace; " +
        "cpu: RLIMIT_CPU seconds per process (timeout x cores + 1; no share of the cores); file size: RLIMIT_FSIZE";

    /// <summary>The command line that sets the execution's rlimits and then execs what follows it.</summary>
    public static IReadOnlyList<string> Prefix(ExecutionSpec spec, RuntimeOptions options) =>
    [
        Prlimit,
        "--nproc=" + Number(spec.MaxProcesses),
        "--data=" + Number((long)spec.MemoryMiB * 1024 * 1024),
        "--cpu=" + Number(CpuSeconds(spec)),
        "--fsize=" + Number((long)options.ScratchSizeMiB * 1024 * 1024),
        "--core=0",
        "--",
    ];

    /// <summary>CPU seconds a process may use: a runaway loop ends even if the agent dies before its timer fires.</summary>
    public static long CpuSeconds(ExecutionSpec spec) =>
        spec.Timeout == Timeout.InfiniteTimeSpan ? 24 * 3600 : (long)Math.Ceiling(spec.Timeout.TotalSeconds * Math.Max(1, spec.Cpu)) + 1;

    private static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);
}
