using System.Security.Cryptography;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes.Internal;

/// <summary>Everything one execution owns on the host; all of it is removed when the execution ends.</summary>
internal sealed class SandboxContext
{
    public SandboxContext(ExecutionSpec spec, RuntimeOptions options, string? id = null)
    {
        Spec = spec;
        Options = options;
        // Short, hex-only ids: they become cgroup names, container ids and paths embedded in the launcher script.
        Id = id ?? "ss" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        SandboxUser = (options.SandboxUid, options.SandboxGid);
    }

    public string Id { get; }

    public ExecutionSpec Spec { get; }

    public RuntimeOptions Options { get; }

    /// <summary>Host uid and gid the sandboxed code runs as (and that owns its scratch); the options' unless the runtime gives each sandbox its own.</summary>
    public (int Uid, int Gid) SandboxUser { get; set; }

    /// <summary>First host uid (and gid) of the execution's own user namespace, when its runtime gives it one.</summary>
    public int? UserNamespaceBase { get; set; }

    public SandboxCgroup? Cgroup { get; set; }

    public Scratch? Scratch { get; set; }

    /// <summary>The execution's private copy of the root skeleton, for runtimes that bind their root (see <see cref="Scratch.CreateRoot"/>).</summary>
    public Scratch? PrivateRoot { get; set; }

    /// <summary>True when an owner record names this process (see <see cref="Orphans"/>) until the clean-up succeeds.</summary>
    public bool Claimed { get; set; }

    /// <summary>True when the execution runs in a sandbox that was started ahead of it (a warm gVisor sandbox).</summary>
    public bool Warm { get; init; }

    /// <summary>
    /// For a warm sandbox: the <c>runsc create</c> that booted it, whose stdio pipes the sandbox's first process
    /// inherited (stdin takes the go-ahead, stdout and stderr carry the code's output).
    /// </summary>
    public System.Diagnostics.Process? Starter { get; set; }

    /// <summary>True when Shield's monitor watches the execution with some coverage (so its code must start with an exec).</summary>
    public bool Watched { get; set; }

    /// <summary>For a warm gVisor sandbox: whether it booted reporting its trace points to Shield's monitor.</summary>
    public bool ShieldTraced { get; init; }

    /// <summary>Per-execution directory for an OCI bundle, if the runtime needs one.</summary>
    public string? BundleDirectory { get; set; }

    /// <summary>
    /// True for a kept sandbox (<see cref="KeptSandbox"/>): its writable directory is the user's home, its first process
    /// the init (<see cref="Command"/>), and its /etc names the user <c>user</c>.
    /// </summary>
    public bool Kept { get; init; }

    /// <summary>Where the scratch directory appears inside the sandbox, and the working directory of its first process.</summary>
    public string WorkDirectory => Kept ? KeptSandbox.Home : "/scratch";

    /// <summary>The first process's command line when it is not the execution's interpreter (a kept sandbox's init).</summary>
    public IReadOnlyList<string>? Command { get; init; }
}
