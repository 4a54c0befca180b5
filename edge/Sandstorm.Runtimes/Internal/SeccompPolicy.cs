using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// The syscall deny-list every sandboxing runtime applies: kernel surfaces no sandboxed program needs
/// (debugging other processes, mounts, new namespaces, kernel keyrings, modules, eBPF, perf) fail with EPERM.
/// Rendered as a classic BPF program for bwrap and as the OCI/podman JSON section for the container runtimes.
/// </summary>
internal static class SeccompPolicy
{
    private const long CloneNewUser = 0x10000000;
    private const int EPERM = 1;
    private const int ENOSYS = 38;

    public static IReadOnlyList<string> Denied { get; } =
    [
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
        "mount", "umount2", "pivot_root", "chroot", "mount_setattr", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
        "unshare", "setns",
        "keyctl", "add_key", "request_key",
        "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
        "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
        "reboot", "swapon", "swapoff", "acct", "syslog", "quotactl", "vhangup",
        "open_by_handle_at", "name_to_handle_at",
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
        "iopl", "ioperm", "lookup_dcookie", "nfsservctl",
    ];

    // libseccomp's Python binding compiles the filter; the script is ours and takes the deny-list as an argument.
    private const string GeneratorScript = """
        import errno, sys, seccomp
        f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        for name in sys.argv[2].split(","):
            try:
                f.add_rule(seccomp.ERRNO(errno.EPERM), name)
            except Exception:
                pass  # not a syscall on this architecture
        f.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, 0x10000000, 0x10000000))
        f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        with open(sys.argv[1], "wb") as out:
            f.export_bpf(out)
        """;

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> Verified = new(StringComparer.Ordinal);

    /// <summary>Where the compiled filter of a work root lives (named after what it is compiled from).</summary>
    public static string FilterPath(RuntimeOptions options)
    {
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(GeneratorScript + "\n" + string.Join(",", Denied))))[..16];
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
            psi.ArgumentList.Add(string.Join(",", Denied));
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
    /// Refuse clone3 with ENOSYS so libc falls back to the filtered clone. gVisor's seccomp emulation does not
    /// return that errno (threads then fail to start) and its sentry has no clone3 anyway, so it passes false.
    /// </param>
    public static JsonObject OciSection(bool refuseClone3 = true)
    {
        var denied = new JsonArray([.. Denied.Select(n => (JsonNode)JsonValue.Create(n)!)]);
        var section = new JsonObject
        {
            ["defaultAction"] = "SCMP_ACT_ALLOW",
            ["architectures"] = new JsonArray("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
            ["syscalls"] = new JsonArray(
                new JsonObject { ["names"] = denied, ["action"] = "SCMP_ACT_ERRNO", ["errnoRet"] = EPERM },
                new JsonObject
                {
                    ["names"] = new JsonArray("clone"),
                    ["action"] = "SCMP_ACT_ERRNO",
                    ["errnoRet"] = EPERM,
                    ["args"] = new JsonArray(new JsonObject { ["index"] = 0, ["value"] = CloneNewUser, ["valueTwo"] = CloneNewUser, ["op"] = "SCMP_CMP_MASKED_EQ" }),
                }),
        };
        if (refuseClone3)
        {
            // Seccomp cannot inspect clone3's flags (they sit in a struct in memory), so clone3 goes entirely.
            section["syscalls"]!.AsArray().Add(new JsonObject { ["names"] = new JsonArray("clone3"), ["action"] = "SCMP_ACT_ERRNO", ["errnoRet"] = ENOSYS });
        }

        return section;
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
