using System.Globalization;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// Isolation <c>standard</c> with podman: <c>podman run --rootfs</c> on a skeleton root (no image pull) with the
/// host's /usr and a minimal /etc bound read-only, a read-only root, no network, no capabilities, no_new_privs,
/// the seccomp allow-list as a podman profile, code as nobody; the container's cgroup sits under the execution's
/// limited cgroup. Slower to start than bwrap or runc (podman sets up storage and conmon per run).
/// </summary>
public sealed class PodmanRuntime : SandboxRuntimeBase
{
    public const string RuntimeName = "podman";
    private const string Podman = "/usr/bin/podman";

    public PodmanRuntime(RuntimeOptions options)
        : base(options)
    {
    }

    public override string Name => RuntimeName;

    public override IsolationLevel Isolation => IsolationLevel.Standard;

    protected override Task<string?> CheckPrerequisitesAsync(CancellationToken ct)
    {
        if (!File.Exists(Podman))
        {
            return Task.FromResult<string?>("podman is not installed");
        }

        return Task.FromResult(Libc.IsRoot ? null : "podman needs root here (rootless podman needs a user session and subuids)");
    }

    private protected override Task<Launch> PrepareAsync(SandboxContext context, CancellationToken ct)
    {
        var options = context.Options;
        var bundle = WorkRootPaths.Bundle(options, context.Id);
        Directory.CreateDirectory(bundle, WorkRoot.Private);
        context.BundleDirectory = bundle;
        var profile = Path.Combine(bundle, "seccomp.json");
        File.WriteAllText(profile, SeccompPolicy.OciSection().ToJsonString());

        // The root is a private copy of the skeleton on a tmpfs of its own (podman creates its mount points in it, and a
        // root bound from the work root would show the work root's path in the sandbox's mountinfo).
        context.PrivateRoot = Scratch.CreateRoot(options, context.Id, RootfsTemplate(options));
        var root = context.PrivateRoot.HostPath;

        // podman honours variables of its own environment (CONTAINER_HOST, STORAGE_OPTS, TMPDIR, the loader's), and
        // `--env K=V` would put the values on its command line, which every local user can read. So podman gets the
        // fixed host environment, and the code's variables travel in a file of the root that a shell inside the
        // container exports before it execs the interpreter.
        var environment = Path.Combine(root, EnvironmentDirectory.TrimStart('/'), "env");
        // The root can be traversed by others (the container's user must reach it): the variables are the sandbox user's
        // alone, from the file's creation on.
        using (var file = new FileStream(environment, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
        {
            file.Write(System.Text.Encoding.UTF8.GetBytes(ShellExports(SandboxEnvironment(context, "/scratch"))));
        }

        if (Libc.chown(environment, context.SandboxUser.Uid, context.SandboxUser.Gid) != 0)
        {
            throw new IOException($"cannot give the environment file of {context.Id} to uid {context.SandboxUser.Uid}");
        }

        var args = new List<string>
        {
            "--cgroup-manager=cgroupfs",
            "run", "--rm", "--name", context.Id,
            // --rootfs is a switch: the root directory comes last, where the image would, followed by the command.
            "--rootfs",
            "--read-only", "--read-only-tmpfs=false",
            "--network=none", "--cgroupns=private", "--ipc=private", "--uts=private", "--hostname", "sandbox",
            "--cgroup-parent", context.Cgroup!.RelativePath,
            "--pids-limit", "0",
            "--cap-drop=all",
            "--security-opt", "no-new-privileges",
            "--security-opt", "seccomp=" + profile,
            "--user", options.SandboxUid.ToString(CultureInfo.InvariantCulture) + ":" + options.SandboxGid.ToString(CultureInfo.InvariantCulture),
            "--workdir", "/scratch",
            "--log-driver", "none",
            // Podman's default open-files limit is above the hard limit this host grants, which fails container start.
            "--ulimit", "nofile=1024:1024",
            "--ulimit", "nproc=" + context.Spec.MaxProcesses.ToString(CultureInfo.InvariantCulture) + ":" + context.Spec.MaxProcesses.ToString(CultureInfo.InvariantCulture),
            "--tmpfs", "/tmp:rw,nosuid,nodev,size=" + options.TmpSizeMiB.ToString(CultureInfo.InvariantCulture) + "m,mode=1777",
            "-v", "/usr:/usr:ro",
            "-v", context.Scratch!.HostPath + ":/scratch:rw",
        };
        foreach (var entry in HostLayout.EtcEntries.Where(Path.Exists))
        {
            args.AddRange(["-v", entry + ":" + entry + ":ro"]);
        }

        args.Add(root);
        args.AddRange(["/bin/sh", "-c", "set -a && . " + EnvironmentDirectory + "/env && set +a && exec \"$@\"", "sandstorm-env"]);
        args.AddRange(OciBundle.Command(context.Spec));
        return Task.FromResult(new Launch
        {
            Command = Podman,
            Arguments = args,
            Environment = HostEnvironment(context),
            WorkingDirectory = bundle,
        });
    }

    // Where the file of the code's variables is mounted (read-only) in the container.
    private const string EnvironmentDirectory = "/run/sandstorm";

    // `K='V'` lines for a POSIX shell: single quotes keep every byte but the quote itself, which is spelled '\''.
    private static string ShellExports(IReadOnlyDictionary<string, string> environment)
    {
        var text = new System.Text.StringBuilder();
        foreach (var (key, value) in environment)
        {
            text.Append(key).Append("='").Append(value.Replace("'", "'\\''", StringComparison.Ordinal)).Append("'\n");
        }

        return text.ToString();
    }

    private protected override async Task StopRuntimeAsync(SandboxContext context) =>
        await RunToolAsync(Podman, ["--cgroup-manager=cgroupfs", "kill", context.Id], TimeSpan.FromSeconds(10));

    private protected override async Task DeleteRuntimeStateAsync(SandboxContext context) =>
        await RunToolAsync(Podman, ["--cgroup-manager=cgroupfs", "rm", "--force", "--ignore", context.Id], TimeSpan.FromSeconds(20));

    // Podman creates its own mount points (/etc/hosts, /run/.containerenv, ...) in the root it is given, so it
    // gets a skeleton of its own rather than the one runc and runsc share read-only.
    private static string RootfsTemplate(RuntimeOptions options) => OciBundle.RootfsTemplate(options, "podman-rootfs");
}
