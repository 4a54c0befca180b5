using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// Isolation <c>standard</c> with runc: an OCI bundle we generate (no image pull) whose read-only root is the host's
/// /usr and a minimal /etc; pid, network (none), ipc, uts, mount and cgroup namespaces; no capabilities,
/// no_new_privs, the seccomp deny-list; code runs as nobody. The container's cgroup sits under the execution's
/// limited cgroup. runc keeps the container running if its client dies, so cleanup always ends with
/// <c>runc delete --force</c>.
/// </summary>
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

    private protected override Task<Launch> PrepareAsync(SandboxContext context, CancellationToken ct)
    {
        var env = SandboxEnvironment(context, context.WorkDirectory);
        var bundle = OciBundle.Write(context, OciBundle.Command(context.Spec), env, context.Cgroup!.RelativePath + "/runc", []);
        return Task.FromResult(new Launch
        {
            Command = Runc,
            Arguments = ["--root", StateRoot, "run", "--bundle", bundle, context.Id],
            Environment = env,
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
