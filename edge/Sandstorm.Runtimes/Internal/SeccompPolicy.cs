using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// The syscall policy every sandboxing runtime applies, an allow-list: the calls ordinary programs make (files, memory,
/// threads and processes, signals, sockets, time, the interpreters' needs) are allowed; a named set of kernel surfaces
/// no sandboxed program needs (debugging other processes, mounts, namespaces, keyrings, modules, eBPF, perf, io_uring,
/// userfaultfd, the LDT, clock setting) fails with EPERM; everything else — calls this list does not know, future ones
/// included — fails with ENOSYS, so libc falls back as it does on an older kernel. Nothing is killed.
/// Rendered as a classic BPF program for bwrap (where the 32-bit entry and the x32 ABI fail with ENOSYS outright) and
/// as the OCI/podman JSON section for the container runtimes (the same names allowed on those ABIs, the rest ENOSYS).
/// </summary>
internal static class SeccompPolicy
{
    private const int EPERM = 1;
    private const int ENOSYS = 38;

    /// <summary>clone flags that make new namespaces (mount, cgroup, uts, ipc, user, pid, net): clone is allowed only without them.</summary>
    private const long CloneNamespaces = 0x7E020000;

    /// <summary>personality values ordinary programs pass (Linux, with or without a 32-bit address space or uname26, and the query).</summary>
    private static readonly long[] Personalities = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

    /// <summary>Calls every sandboxed program may make.</summary>
    public static IReadOnlyList<string> Allowed { get; } =
    [
        // Files and descriptors.
        "read", "write", "open", "openat", "openat2", "close", "close_range", "creat", "lseek", "pread64", "pwrite64", "readv", "writev",
        "preadv", "pwritev", "preadv2", "pwritev2", "dup", "dup2", "dup3", "fcntl", "flock", "fsync", "fdatasync", "sync", "syncfs",
        "sync_file_range", "truncate", "ftruncate", "fallocate", "fadvise64", "readahead", "sendfile", "splice", "tee", "vmsplice",
        "copy_file_range", "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2",
        "getdents", "getdents64", "getcwd", "chdir", "fchdir", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir",
        "link", "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat", "chmod", "fchmod", "fchmodat",
        "fchmodat2", "chown", "fchown", "lchown", "fchownat", "umask", "utime", "utimes", "utimensat", "futimesat", "mknod", "mknodat",
        "setxattr", "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr",
        "removexattr", "lremovexattr", "fremovexattr", "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
        "ioctl", "pipe", "pipe2", "memfd_create", "eventfd", "eventfd2", "signalfd", "signalfd4", "timerfd_create", "timerfd_settime",
        "timerfd_gettime", "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait",
        "epoll_pwait", "epoll_pwait2", "io_setup", "io_destroy", "io_getevents", "io_pgetevents", "io_submit", "io_cancel", "cachestat",

        // Memory.
        "brk", "mmap", "munmap", "mremap", "mprotect", "msync", "mincore", "madvise", "mlock", "mlock2", "munlock", "mlockall",
        "munlockall", "membarrier", "get_mempolicy", "set_mempolicy", "mbind", "remap_file_pages", "pkey_mprotect", "pkey_alloc",
        "pkey_free", "map_shadow_stack",

        // Processes, threads, signals (clone itself is allowed below, without namespace flags).
        "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "kill", "tkill", "tgkill", "getpid", "gettid",
        "getppid", "set_tid_address", "set_robust_list", "get_robust_list", "futex", "futex_waitv", "futex_wake", "futex_wait",
        "futex_requeue", "rseq", "arch_prctl", "prctl", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
        "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "pause", "restart_syscall",
        "pidfd_open", "pidfd_send_signal", "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",

        // Identity and limits (no capabilities: these can only keep or drop what the sandbox has).
        "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "setuid", "setgid", "setreuid", "setregid",
        "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups", "capget", "capset", "getpgid", "getpgrp", "setpgid", "getsid",
        "setsid", "getrlimit", "setrlimit", "prlimit64", "getrusage", "getpriority", "setpriority", "ioprio_get", "ioprio_set",
        "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam", "sched_setparam", "sched_getscheduler",
        "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr",
        "sched_setattr", "getcpu",

        // Time.
        "time", "gettimeofday", "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "alarm", "getitimer", "setitimer",
        "timer_create", "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete", "times",

        // Sockets (the sandbox has no network but loopback; local sockets serve multiprocessing and the like).
        "socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "shutdown", "getsockname", "getpeername",
        "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",

        // System V and POSIX IPC (the sandbox has its own IPC namespace).
        "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget", "msgsnd", "msgrcv", "msgctl",
        "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",

        // About the system.
        "uname", "sysinfo", "getrandom",
    ];

    /// <summary>Kernel surfaces refused with EPERM by name (anything else outside <see cref="Allowed"/> gets ENOSYS).</summary>
    public static IReadOnlyList<string> Denied { get; } =
    [
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise", "process_mrelease",
        "move_pages", "migrate_pages", "set_mempolicy_home_node", "memfd_secret",
        "mount", "umount2", "pivot_root", "chroot", "mount_setattr", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
        "unshare", "setns", "sethostname", "setdomainname",
        "keyctl", "add_key", "request_key",
        "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init", "fanotify_mark",
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
        "reboot", "swapon", "swapoff", "acct", "syslog", "quotactl", "quotactl_fd", "vhangup",
        "open_by_handle_at", "name_to_handle_at",
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
        "iopl", "ioperm", "modify_ldt", "lookup_dcookie", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
    ];

    // libseccomp's Python binding compiles the filter; the script is ours and takes the lists as arguments. Calls a list
    // names that this architecture or libseccomp does not know are skipped (they fall to the default, ENOSYS).
    private const string GeneratorScript = """
        import errno, sys, seccomp
        f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.ENOSYS))
        # The 32-bit entry (int 0x80) and the x32 ABI are other architectures to this x86_64 filter: refused, not killed.
        f.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.ERRNO(errno.ENOSYS))
        def rules(names, action, *args):
            for name in names.split(","):
                try:
                    f.add_rule(action, name, *args)
                except Exception:
                    pass
        rules(sys.argv[2], seccomp.ALLOW)
        rules(sys.argv[3], seccomp.ERRNO(errno.EPERM))
        f.add_rule(seccomp.ALLOW, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, int(sys.argv[4]), 0))
        for persona in sys.argv[5].split(","):
            f.add_rule(seccomp.ALLOW, "personality", seccomp.Arg(0, seccomp.EQ, int(persona)))
        with open(sys.argv[1], "wb") as out:
            f.export_bpf(out)
        """;

    private static IEnumerable<string> GeneratorArguments() =>
    [
        string.Join(",", Allowed), string.Join(",", Denied),
        CloneNamespaces.ToString(System.Globalization.CultureInfo.InvariantCulture),
        string.Join(",", Personalities.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture))),
    ];

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> Verified = new(StringComparer.Ordinal);

    /// <summary>Where the compiled filter of a work root lives (named after what it is compiled from).</summary>
    public static string FilterPath(RuntimeOptions options)
    {
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(GeneratorScript + "\n" + string.Join("\n", GeneratorArguments()))))[..16];
        return Path.Combine(options.WorkRoot, "seccomp", $"filter-{hash}.bpf");
    }

    /// <summary>Path of the compiled BPF program (generated with /usr/bin/python3 and python3-seccomp when missing).</summary>
    /// <remarks>
    /// The file is named after a hash of what it is compiled from, so every agent sharing a work root uses (and
    /// never deletes) the same file, and a restart reuses it without running the compiler. Launchers open it by path
    /// on every execution, so its presence is checked each time (a stat) and it is rebuilt if someone removed it.
    /// A file found on disk is used only if this process's user made it and nobody else can write it (the work root
    /// is private, see <see cref="WorkRoot"/>); anything else is compiled again and replaced.
    /// (Earlier builds named theirs <c>deny-&lt;pid&gt;.bpf</c> and deleted every other <c>deny-*.bpf</c>; the new
    /// name keeps agents of both kinds on one machine from deleting each other's filter.)
    /// </remarks>
    public static async Task<string> BpfFileAsync(RuntimeOptions options, CancellationToken ct)
    {
        var path = FilterPath(options);
        if (Verified.TryGetValue(path, out var known) && File.Exists(known))
        {
            return known;
        }

        WorkRoot.EnsurePrivate(options);
        await Gate.WaitAsync(ct);
        try
        {
            var dir = Path.GetDirectoryName(path)!;
            if (Libc.LStat(path) is { IsRegularFile: true } status && status.Uid == Libc.geteuid() && (status.Permissions & 0x12) == 0 && new FileInfo(path).Length > 0)
            {
                Verified[path] = path;
                return path;
            }

            Directory.CreateDirectory(dir, WorkRoot.Private);
            // Compiled to a private name and renamed into place, so no launcher ever opens a half-written filter.
            TryDelete(Path.Combine(dir, $"{Path.GetFileNameWithoutExtension(path)}.{Environment.ProcessId}.tmp"));
            var temp = Path.Combine(dir, $"{Path.GetFileNameWithoutExtension(path)}.{Environment.ProcessId}.tmp");
            var psi = new ProcessStartInfo("/usr/bin/python3") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(GeneratorScript);
            psi.ArgumentList.Add(temp);
            foreach (var argument in GeneratorArguments())
            {
                psi.ArgumentList.Add(argument);
            }

            using var process = Process.Start(psi)!;
            var error = await process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct);
            if (process.ExitCode != 0 || !File.Exists(temp) || new FileInfo(temp).Length == 0)
            {
                TryDelete(temp);
                throw new InvalidOperationException($"compiling the seccomp filter failed (python3-seccomp installed?): {error.Trim()}");
            }

            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(temp, path, overwrite: true);
            Verified[path] = path;
            return path;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>The policy as the <c>linux.seccomp</c> object of an OCI config (also podman's profile format).</summary>
    /// <param name="refuseClone3">
    /// Refuse clone3 (ENOSYS, as every call outside the list) so libc falls back to the filtered clone: seccomp cannot
    /// see clone3's flags, which sit in memory. gVisor's sentry has no clone3 of its own, and its seccomp emulation must
    /// let the call reach the sentry (threads fail to start otherwise), so gVisor passes false.
    /// </param>
    /// <remarks>
    /// The OCI format names calls for every listed architecture at once, so the 32-bit entry and x32 get the same
    /// allow-list (runc would kill a process calling from an architecture its filter does not list).
    /// </remarks>
    public static JsonObject OciSection(bool refuseClone3 = true)
    {
        static JsonArray Names(IEnumerable<string> names) => new([.. names.Select(n => (JsonNode)JsonValue.Create(n)!)]);
        var syscalls = new JsonArray
        {
            new JsonObject { ["names"] = Names(refuseClone3 ? Allowed : [.. Allowed, "clone3"]), ["action"] = "SCMP_ACT_ALLOW" },
            new JsonObject { ["names"] = Names(Denied), ["action"] = "SCMP_ACT_ERRNO", ["errnoRet"] = EPERM },
            new JsonObject
            {
                ["names"] = Names(["clone"]),
                ["action"] = "SCMP_ACT_ALLOW",
                ["args"] = new JsonArray(new JsonObject { ["index"] = 0, ["value"] = CloneNamespaces, ["valueTwo"] = 0, ["op"] = "SCMP_CMP_MASKED_EQ" }),
            },
        };
        foreach (var persona in Personalities)
        {
            syscalls.Add(new JsonObject
            {
                ["names"] = Names(["personality"]),
                ["action"] = "SCMP_ACT_ALLOW",
                ["args"] = new JsonArray(new JsonObject { ["index"] = 0, ["value"] = persona, ["op"] = "SCMP_CMP_EQ" }),
            });
        }

        return new JsonObject
        {
            ["defaultAction"] = "SCMP_ACT_ERRNO",
            ["defaultErrnoRet"] = ENOSYS,
            ["architectures"] = new JsonArray("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
            ["syscalls"] = syscalls,
        };
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }
}
