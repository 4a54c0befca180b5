using System.Globalization;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// Isolation <c>standard</c> with bubblewrap: new user, pid, network, mount, ipc, uts and cgroup namespaces;
/// the seccomp allow-list; a read-only root of the host's /usr and a minimal /etc; a writable <c>/scratch</c>
/// (tmpfs, size-capped) and a size-capped <c>/tmp</c>; no network at all; cgroup v1 memory/pids/cpu limits.
/// Code runs as the host's <c>nobody</c>, so even an escape from the namespaces lands unprivileged.
/// </summary>
/// <remarks>
/// bwrap's own <c>--uid</c> only names the user inside the namespace; the namespace maps it to whoever ran bwrap.
/// So bwrap itself must start as <c>nobody</c>: the forked child switches before its first exec (no extra
/// <c>setpriv</c> exec), falling back to <c>setpriv</c> only when no account matches the configured uid and gid.
/// </remarks>
public sealed class BwrapRuntime : SandboxRuntimeBase
{
    public const string RuntimeName = "bwrap";
    private const string Bwrap = "/usr/bin/bwrap";
    private const string Setpriv = "/usr/bin/setpriv";

    public BwrapRuntime(RuntimeOptions options)
        : base(options)
    {
    }

    public override string Name => RuntimeName;

    public override bool CanKeep => true;

    public override IsolationLevel Isolation => IsolationLevel.Standard;

    // An agent started as an ordinary user cannot write cgroup v1 (nothing delegates it here), so its limits are rlimits
    // set inside the sandbox; as root, cgroups stay required.
    protected override bool RequiresCgroups => Libc.IsRoot;

    // Unprivileged, bwrap runs as the agent's own user (only root can switch to nobody): it owns the scratch.
    protected override bool RunsAsSandboxUser => Libc.IsRoot;

    protected override string RlimitEnforcement => SandboxRlimits.Description;

    protected override async Task<string?> CheckPrerequisitesAsync(CancellationToken ct)
    {
        if (!File.Exists(Bwrap))
        {
            return "bubblewrap is not installed (/usr/bin/bwrap)";
        }

        if (!File.Exists("/proc/self/ns/user"))
        {
            return "the kernel has no user namespaces";
        }

        try
        {
            await SeccompPolicy.BpfFileAsync(Options, ct);
        }
        catch (InvalidOperationException e)
        {
            return e.Message;
        }

        return null;
    }

    private protected override async Task<Launch> PrepareAsync(SandboxContext context, CancellationToken ct)
    {
        var options = context.Options;
        var seccomp = await SeccompPolicy.BpfFileAsync(options, ct);
        var etc = HostLayout.EtcFor(context);
        var home = context.WorkDirectory;
        var uid = options.SandboxUid.ToString(CultureInfo.InvariantCulture);
        var gid = options.SandboxGid.ToString(CultureInfo.InvariantCulture);

        var args = new List<string>();
        string command;
        string? userName = null;
        if (Libc.IsRoot && (userName = SandboxAccount(options)) is not null)
        {
            command = Bwrap;
        }
        else if (Libc.IsRoot)
        {
            // Drop to nobody before bwrap: its user namespace then maps to an unprivileged host user.
            command = Setpriv;
            args.AddRange(["--reuid=" + uid, "--regid=" + gid, "--clear-groups", "--", Bwrap]);
        }
        else
        {
            command = Bwrap;
        }

        args.AddRange(
        [
            "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            // Nested user namespaces are the usual first step of a kernel exploit; forbid them outright.
            "--disable-userns",
            "--die-with-parent", "--new-session", "--hostname", "sandbox",

            // The interpreter is the namespace's pid 1 instead of a child of a bwrap reaper: one fork less per start
            // (the largest single cost of bwrap's own, ~10 ms of CPU on these machines). Whatever the code leaves
            // running is still killed when it exits, by the kernel, as the namespace's init is gone.
            "--as-pid-1",
            "--uid", uid, "--gid", gid,
        ]);
        foreach (var dir in HostLayout.SystemDirectories)
        {
            var link = HostLayout.LinkTarget(dir);
            if (link is not null)
            {
                args.AddRange(["--symlink", link, dir]);
            }
            else if (Directory.Exists(dir))
            {
                args.AddRange(["--ro-bind", dir, dir]);
            }
        }

        foreach (var entry in HostLayout.EtcEntries)
        {
            args.AddRange(["--ro-bind-try", entry, entry]);
        }

        // bwrap runs as the sandbox user, who cannot open anything in the private work root: the seccomp program, the
        // sandbox's environment and its /etc files come as descriptors this process opens. The /etc files are copied in
        // (--file) rather than bound, so the sandbox's mountinfo names no path of the host's work root either.
        args.AddRange(
        [
            "--perms", "0644", "--file", Launch.InheritedFdOf(2), "/etc/passwd",
            "--perms", "0644", "--file", Launch.InheritedFdOf(3), "/etc/group",
            "--perms", "0644", "--file", Launch.InheritedFdOf(4), "/etc/hosts",
            "--proc", "/proc",
            "--dev", "/dev",

            // Shared memory (multiprocessing's semaphores) on a tmpfs of its own, capped like /tmp.
            "--size", ((long)options.TmpSizeMiB * 1024 * 1024).ToString(CultureInfo.InvariantCulture), "--perms", "01777", "--tmpfs", "/dev/shm",
            "--size", ((long)options.TmpSizeMiB * 1024 * 1024).ToString(CultureInfo.InvariantCulture), "--tmpfs", "/tmp",
            "--bind", context.Scratch!.HostPath, home,
            "--remount-ro", "/",
            "--chdir", home,
            "--seccomp", Launch.InheritedFd,

            // The caller's variables never reach bwrap's own environment (its loader would honour LD_PRELOAD and
            // LD_DEBUG_OUTPUT on the host, before any namespace exists): bwrap clears what it has and sets exactly these
            // for the code, read from a file rather than its command line, which every local user can read.
            "--args", Launch.InheritedFdOf(1),
            "--",
        ]);
        if (context.Cgroup is null)
        {
            // No cgroups: the limits are rlimits, set by the sandbox's first process before it execs the code.
            args.AddRange(SandboxRlimits.Prefix(context.Spec, options));
        }

        args.AddRange(context.Command ?? CodeCommand(context.Spec, home));
        return new Launch
        {
            // The code is the pid namespace's init and bwrap dies with this process: ending it ends every process in it.
            EndsWholeTree = true,
            Command = command,
            Arguments = args,
            Environment = HostEnvironment(context),
            WorkingDirectory = "/",
            InheritedFiles = [seccomp, WriteEnvironmentArguments(context, home), Path.Combine(etc, "passwd"), Path.Combine(etc, "group"), Path.Combine(etc, "hosts")],
            UserName = userName,
        };
    }

    // bwrap's --args file: NUL-separated options that give the code exactly its environment.
    private string WriteEnvironmentArguments(SandboxContext context, string home)
    {
        var bundle = WorkRootPaths.Bundle(context.Options, context.Id);
        Directory.CreateDirectory(bundle, WorkRoot.Private);
        context.BundleDirectory = bundle;
        var text = new System.Text.StringBuilder("--clearenv\0");
        foreach (var (key, value) in SandboxEnvironment(context, home))
        {
            text.Append("--setenv\0").Append(key).Append('\0').Append(value).Append('\0');
        }

        var path = Path.Combine(bundle, "bwrap-environment");
        File.WriteAllText(path, text.ToString(), new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        return path;
    }

    // The user database is read once per uid/gid pair rather than on every execution.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(int, int), string?> Accounts = new();

    private static string? SandboxAccount(RuntimeOptions options) =>
        Accounts.GetOrAdd((options.SandboxUid, options.SandboxGid), key => HostLayout.AccountName(key.Item1, key.Item2));
}
