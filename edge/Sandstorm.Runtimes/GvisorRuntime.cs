using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// Isolation <c>strong</c> with gVisor (<c>runsc</c>, ptrace platform): the code talks to gVisor's user-space kernel,
/// never to the host's; no network at all (<c>--network=none</c>); the seccomp deny-list applied inside
/// (<c>--oci-seccomp</c>); the same read-only root and /scratch as runc, its mounts cached by the sentry
/// (<c>--file-access-mounts=exclusive</c>). The host pids cgroup counts gVisor's own
/// threads, so it is at least 512 and forks inside are bounded by RLIMIT_NPROC; the memory limit adds headroom
/// for the sentry itself.
/// </summary>
public sealed class GvisorRuntime : SandboxRuntimeBase
{
    public const string RuntimeName = "gvisor";
    private const string Runsc = "/usr/bin/runsc";

    /// <summary>Host memory the gVisor sentry and gofer need on top of the sandboxed code's own limit.</summary>
    public const int SentryOverheadMiB = 192;

    public GvisorRuntime(RuntimeOptions options)
        : base(options)
    {
    }

    public override string Name => RuntimeName;

    public override IsolationLevel Isolation => IsolationLevel.Strong;

    /// <summary>runsc's state directory for our sandboxes (runsc --root).</summary>
    public string StateRoot => Path.Combine(Options.WorkRoot, "runsc-state");

    protected override Task<string?> CheckPrerequisitesAsync(CancellationToken ct)
    {
        if (!File.Exists(Runsc))
        {
            return Task.FromResult<string?>("gVisor (runsc) is not installed");
        }

        return Task.FromResult(Libc.IsRoot ? null : "runsc needs root here");
    }

    private protected override int CgroupPidsLimit(ExecutionSpec spec) => Math.Max(512, spec.MaxProcesses * 8);

    private protected override long CgroupMemoryBytes(ExecutionSpec spec) => ((long)spec.MemoryMiB + SentryOverheadMiB) * 1024 * 1024;

    private protected override Task<Launch> PrepareAsync(SandboxContext context, CancellationToken ct)
    {
        var env = SandboxEnvironment(context, "/scratch");
        var bundle = OciBundle.Write(
            context,
            OciBundle.Command(context.Spec),
            env,
            cgroupsPath: null,
            [OciBundle.Rlimit("RLIMIT_NPROC", context.Spec.MaxProcesses)],
            refuseClone3: false);
        return Task.FromResult(new Launch
        {
            Command = Runsc,
            Arguments = [.. GlobalFlags, "run", "--bundle", bundle, context.Id],
            Environment = env,
            WorkingDirectory = bundle,
        });
    }

    // runsc's own cgroup handling is off: the launcher already placed runsc (and so the sentry and gofer) in the
    // execution's limited cgroup, which bounds them as a whole.
    // --file-access-mounts=exclusive lets the sentry cache what it looked up in the bind mounts (/usr, the /etc files,
    // /scratch) instead of asking the gofer again on every lookup: nothing but the sandbox changes them while it runs
    // (the host writes /scratch only before the start). Interpreter start-up is mostly such lookups: about 9% less
    // wall time for python's hello on these machines. It is a caching choice, not an isolation one.
    private string[] GlobalFlags =>
        ["--root", StateRoot, "--platform=ptrace", "--network=none", "--oci-seccomp", "--ignore-cgroups", "--file-access-mounts=exclusive"];

    // runsc keeps <id>_sandbox:<id>.state (and a lock file) under its root while a sandbox exists; `runsc run`
    // destroys the sandbox and removes them when the container exits.
    private protected override bool HasRuntimeState(SandboxContext context) =>
        Directory.Exists(StateRoot) && Directory.EnumerateFileSystemEntries(StateRoot, context.Id + "_*").Any();

    private protected override async Task StopRuntimeAsync(SandboxContext context) =>
        await RunToolAsync(Runsc, [.. GlobalFlags, "kill", "--all", context.Id, "KILL"], TimeSpan.FromSeconds(10));

    private protected override async Task DeleteRuntimeStateAsync(SandboxContext context) =>
        await RunToolAsync(Runsc, [.. GlobalFlags, "delete", "--force", context.Id], TimeSpan.FromSeconds(10));
}
