using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// Isolation <c>standard</c> with runc: an OCI bundle we generate (no image pull) whose read-only root is the host's
/// /usr and a minimal /etc; user, pid, network (none), ipc, uts, mount and cgroup namespaces; no capabilities,
/// no_new_privs, the seccomp allow-list; code runs as nobody. The container's cgroup sits under the execution's
/// limited cgroup. runc keeps the container running if its client dies, so cleanup always ends with
/// <c>runc delete --force</c>.
/// </summary>
/// <remarks>
/// Each container has a user namespace of its own, mapping uids and gids 0-65535 onto a range of host ids no other
/// running sandbox of this process uses (drawn at random from <see cref="UserNamespaceFirst"/> on, so other processes'
/// ranges rarely meet ours): inside, the code is nobody (65534) as everywhere; on the host it is a uid of its own, so
/// concurrent sandboxes share neither a uid (files, signals, should anything escape the namespaces) nor the per-user
/// process count that RLIMIT_NPROC (set to the execution's process limit) bounds.
/// </remarks>
public sealed class RuncRuntime : SandboxRuntimeBase
{
    public const string RuntimeName = "runc";

    public RuncRuntime(RuntimeOptions options)
        : base(options)
    {
    }

    public override string Name => RuntimeName;

    public override bool CanKeep => true;

    public override IsolationLevel Isolation => IsolationLevel.Standard;

    /// <summary>runc's state directory for our containers (runc --root).</summary>
    public string StateRoot => WorkRootPaths.RuncStateRoot(Options);

    private static string Runc => File.Exists("/usr/sbin/runc") ? "/usr/sbin/runc" : "/usr/bin/runc";

    protected override Task<string?> CheckPrerequisitesAsync(CancellationToken ct)
    {
        if (!File.Exists(Runc))
        {
            return Task.FromResult<string?>("runc is not installed");
        }

        return Task.FromResult(Libc.IsRoot ? null : "runc needs root here (rootless runc needs a systemd user session)");
    }

    /// <summary>First host uid (and gid) of the ranges runc containers' user namespaces map to.</summary>
    public const int UserNamespaceFirst = 0x40000000;

    // Ranges of 65536 ids from UserNamespaceFirst up to 2^31 (ids above that confuse too many tools).
    private const int UserNamespaceSlots = (int.MaxValue - UserNamespaceFirst) / OciBundle.UserNamespaceSize;

    private static readonly HashSet<int> SlotsInUse = [];

    private protected override void AssignSandboxUser(SandboxContext context)
    {
        if (!Libc.IsRoot)
        {
            return;
        }

        int slot;
        lock (SlotsInUse)
        {
            do
            {
                slot = System.Security.Cryptography.RandomNumberGenerator.GetInt32(UserNamespaceSlots);
            }
            while (!SlotsInUse.Add(slot));
        }

        var hostBase = UserNamespaceFirst + (slot * OciBundle.UserNamespaceSize);
        context.UserNamespaceBase = hostBase;
        context.SandboxUser = (hostBase + Options.SandboxUid, hostBase + Options.SandboxGid);
    }

    private protected override void ReleaseSandboxUser(SandboxContext context)
    {
        if (context.UserNamespaceBase is { } hostBase)
        {
            lock (SlotsInUse)
            {
                SlotsInUse.Remove((hostBase - UserNamespaceFirst) / OciBundle.UserNamespaceSize);
            }

            context.UserNamespaceBase = null;
        }
    }

    private protected override Task<Launch> PrepareAsync(SandboxContext context, CancellationToken ct)
    {
        // The code's environment goes into the bundle's process.env only; runc itself gets the fixed host one.
        var env = SandboxEnvironment(context, context.WorkDirectory);
        var bundle = OciBundle.Write(
            context,
            OciBundle.Command(context.Spec),
            env,
            context.Cgroup!.RelativePath + "/runc",
            [OciBundle.Rlimit("RLIMIT_NPROC", context.Spec.MaxProcesses)],
            userNamespaceBase: context.UserNamespaceBase,
            privateRoot: true);
        return Task.FromResult(new Launch
        {
            Command = Runc,
            Arguments = ["--root", StateRoot, "run", "--bundle", bundle, context.Id],
            Environment = HostEnvironment(context),
            WorkingDirectory = bundle,
        });
    }

    // runc keeps a container's state in <root>/<id> from create until delete; `runc run` deletes it when the
    // container exits, so its absence means there is nothing to kill or delete.
    private protected override bool HasRuntimeState(SandboxContext context) => Directory.Exists(Path.Combine(StateRoot, context.Id));

    private protected override async Task StopRuntimeAsync(SandboxContext context) =>
        await RunToolAsync(Runc, ["--root", StateRoot, "kill", "--all", context.Id, "KILL"], TimeSpan.FromSeconds(10));

    private protected override async Task DeleteRuntimeStateAsync(SandboxContext context) =>
        await RunToolAsync(Runc, ["--root", StateRoot, "delete", "--force", context.Id], TimeSpan.FromSeconds(10));
}
