using System.Globalization;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// Isolation <c>standard</c> with podman: <c>podman run --rootfs</c> on a skeleton root (no image pull) with the
/// host's /usr and a minimal /etc bound read-only, a read-only root, no network, no capabilities, no_new_privs,
/// the seccomp allow-list as a podman profile, code as nobody; the container's cgroup sits under the execution's
/// limited cgroup. Slower to start than bwrap or runc (podman sets up storage and conmon per run).
/// Started as an ordinary user it is rootless podman: the user's single id mapped to the container's root (no sub-uid
/// ranges needed), a user namespace per container, storage and run state in the work root, rlimits instead of cgroups.
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

    // Rootless (an agent started as an ordinary user): no cgroups can be had, so the limits are rlimits set inside the
    // container, as for bwrap; the code runs as the container's root, which is the agent's own user on the host.
    protected override bool RequiresCgroups => Libc.IsRoot;

    protected override bool RunsAsSandboxUser => Libc.IsRoot;

    protected override string RlimitEnforcement => SandboxRlimits.Description;

    protected override Task<string?> CheckPrerequisitesAsync(CancellationToken ct)
    {
        if (!File.Exists(Podman))
        {
            return Task.FromResult<string?>("podman is not installed");
        }

        return Task.FromResult<string?>(null);
    }

    private protected override async Task<Launch> PrepareAsync(SandboxContext context, CancellationToken ct)
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

        if (Libc.IsRoot && Libc.chown(environment, context.SandboxUser.Uid, context.SandboxUser.Gid) != 0)
        {
            throw new IOException($"cannot give the environment file of {context.Id} to uid {context.SandboxUser.Uid}");
        }

        var rootless = !Libc.IsRoot;
        if (rootless)
        {
            await EnsurePauseProcessAsync(options);
        }

        var args = new List<string>(GlobalArguments(options))
        {
            "run", "--rm", "--name", context.Id,
            // Which agent's container it is (several agents, or test runs, can share one podman store).
            "--label", "sandstorm.workroot=" + options.WorkRoot,
            // --rootfs is a switch: the root directory comes last, where the image would, followed by the command.
            "--rootfs",
            "--read-only", "--read-only-tmpfs=false",
            "--network=none", "--cgroupns=private", "--ipc=private", "--uts=private", "--hostname", "sandbox",
            "--cap-drop=all",
            "--security-opt", "no-new-privileges",
            "--security-opt", "seccomp=" + profile,
            "--workdir", "/scratch",
            "--log-driver", "none",
            // Podman's default open-files limit is above the hard limit this host grants, which fails container start.
            "--ulimit", "nofile=1024:1024",
            "--ulimit", "nproc=" + context.Spec.MaxProcesses.ToString(CultureInfo.InvariantCulture) + ":" + context.Spec.MaxProcesses.ToString(CultureInfo.InvariantCulture),
            "--tmpfs", "/tmp:rw,nosuid,nodev,size=" + options.TmpSizeMiB.ToString(CultureInfo.InvariantCulture) + "m,mode=1777",
            "-v", "/usr:/usr:ro",
            "-v", context.Scratch!.HostPath + ":/scratch:rw",
        };
        if (rootless)
        {
            // The user's single id is all there is to map (no sub-uid ranges): the container's root is the agent's user,
            // with no capabilities, in a user namespace of its own per container (so RLIMIT_NPROC counts this sandbox only).
            args.AddRange(["--uidmap", "0:0:1", "--gidmap", "0:0:1", "--user", "0:0"]);
        }
        else
        {
            args.AddRange(["--cgroup-parent", context.Cgroup!.RelativePath, "--pids-limit", "0"]);
            args.AddRange(["--user", options.SandboxUid.ToString(CultureInfo.InvariantCulture) + ":" + options.SandboxGid.ToString(CultureInfo.InvariantCulture)]);
        }

        foreach (var entry in HostLayout.EtcEntries.Where(Path.Exists))
        {
            args.AddRange(["-v", entry + ":" + entry + ":ro"]);
        }

        args.Add(root);
        if (context.Cgroup is null)
        {
            // No cgroups: the limits are rlimits, set by the container's first process before anything else runs.
            args.AddRange(SandboxRlimits.Prefix(context.Spec, options));
        }

        args.AddRange(["/bin/sh", "-c", "set -a && . " + EnvironmentDirectory + "/env && set +a && exec \"$@\"", "sandstorm-env"]);
        args.AddRange(OciBundle.Command(context.Spec));
        var environmentOfPodman = HostEnvironment(context);
        foreach (var (key, value) in RootlessEnvironment(options))
        {
            environmentOfPodman[key] = value;
        }

        return new Launch
        {
            Command = Podman,
            Arguments = args,
            Environment = environmentOfPodman,
            WorkingDirectory = bundle,
        };
    }

    // podman's own options: cgroupfs (no systemd here) and, rootless, its storage and run state in the work root.
    private static List<string> GlobalArguments(RuntimeOptions options) => Libc.IsRoot
        ? ["--cgroup-manager=cgroupfs"]
        : ["--cgroup-manager=cgroupfs", "--root", Path.Combine(RootlessState(options), "storage"), "--runroot", RootlessRunRoot(options)];

    /// <summary>
    /// Rootless podman's run state. podman refuses a run root longer than 50 characters (its sockets' paths must fit), so
    /// it is a short private directory in /tmp named by this user and the work root, not one in the work root; it must be
    /// a directory of this user's that nobody else may enter (else the runtime refuses, as it does a work root).
    /// </summary>
    /// <param name="options">The runtime's options (their work root).</param>
    /// <param name="uid">The agent's user; this process's by default.</param>
    public static string RootlessRunRoot(RuntimeOptions options, uint? uid = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(options.WorkRoot))))[..8];
        return "/tmp/sandstorm-podman-" + (uid ?? Libc.geteuid()).ToString(CultureInfo.InvariantCulture) + "-" + hash;
    }

    private static void EnsurePrivateDirectory(string path)
    {
        Directory.CreateDirectory(path, WorkRoot.Private);
        if (Libc.LStat(path) is not { IsDirectory: true, IsSymlink: false } status || status.Uid != Libc.geteuid() || (status.Permissions & 0x3F) != 0)
        {
            throw new InvalidOperationException($"{path} is not a private directory of this user's (another user may have made it): remove it");
        }
    }

    // Rootless podman keeps its state in the work root rather than the agent user's home and session.
    private static string RootlessState(RuntimeOptions options) => Path.Combine(options.WorkRoot, "podman");

    private static Dictionary<string, string> RootlessEnvironment(RuntimeOptions options) => Libc.IsRoot
        ? []
        : new(StringComparer.Ordinal) { ["XDG_RUNTIME_DIR"] = Path.Combine(RootlessState(options), "xdg") };

    private static readonly SemaphoreSlim PauseLock = new(1, 1);

    /// <summary>The pid file of rootless podman's pause process (which holds its user namespace) for this work root.</summary>
    public static string PauseProcessPidFile(RuntimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Path.Combine(RootlessState(options), "xdg", "libpod", "tmp", "pause.pid");
    }

    // Rootless podman keeps its user namespace open with a long-lived pause process, started by the first podman command
    // that needs it and inheriting that command's environment. Started here, once, with a fixed environment: were an
    // execution's podman to start it, it would carry that execution's marker past the execution's end.
    private static async Task EnsurePauseProcessAsync(RuntimeOptions options)
    {
        await PauseLock.WaitAsync();
        try
        {
            var pidFile = PauseProcessPidFile(options);
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && Directory.Exists($"/proc/{pid}"))
            {
                return;
            }

            foreach (var dir in new[] { RootlessState(options), Path.Combine(RootlessState(options), "xdg"), RootlessRunRoot(options) })
            {
                EnsurePrivateDirectory(dir);
            }

            var environment = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin",
                ["HOME"] = RootlessState(options),
                ["LANG"] = "C.UTF-8",
            };
            foreach (var (key, value) in RootlessEnvironment(options))
            {
                environment[key] = value;
            }

            var (exit, output) = await RunToolAsync(Podman, [.. GlobalArguments(options), "unshare", "/bin/true"], TimeSpan.FromSeconds(60), environment);
            if (exit != 0)
            {
                throw new InvalidOperationException("rootless podman could not set up its user namespace: " + output.Trim());
            }
        }
        finally
        {
            PauseLock.Release();
        }
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
        await RunToolAsync(Podman, [.. GlobalArguments(context.Options), "kill", context.Id], TimeSpan.FromSeconds(10), ToolEnvironment(context));

    private protected override async Task DeleteRuntimeStateAsync(SandboxContext context) =>
        await RunToolAsync(Podman, [.. GlobalArguments(context.Options), "rm", "--force", "--ignore", context.Id], TimeSpan.FromSeconds(20), ToolEnvironment(context));

    // Rootless, podman's kill and rm must find the same run state and user namespace as its run.
    private static Dictionary<string, string>? ToolEnvironment(SandboxContext context)
    {
        if (Libc.IsRoot)
        {
            return null;
        }

        var environment = HostEnvironment(context);
        foreach (var (key, value) in RootlessEnvironment(context.Options))
        {
            environment[key] = value;
        }

        return environment;
    }

    // Podman creates its own mount points (/etc/hosts, /run/.containerenv, ...) in the root it is given, so it
    // gets a skeleton of its own rather than the one runc and runsc share read-only.
    private static string RootfsTemplate(RuntimeOptions options) => OciBundle.RootfsTemplate(options, "podman-rootfs");
}
