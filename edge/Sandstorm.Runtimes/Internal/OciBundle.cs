using System.Text.Json;
using System.Text.Json.Nodes;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// Builds OCI bundles (config.json) for runc and runsc, and the shared read-only root they start from: an empty
/// skeleton of mount points and merged-/usr symlinks, with the host's /usr and a few /etc files bound read-only.
/// No images are pulled.
/// </summary>
internal static class OciBundle
{
    private static readonly Lock TemplateLock = new();

    // Bumped when the skeleton's layout changes, so an older skeleton on disk is rebuilt rather than reused.
    private const string TemplateVersion = "3";

    /// <summary>Uids (and gids) a container's user namespace maps: 0-65535.</summary>
    public const int UserNamespaceSize = 65536;

    private static readonly HashSet<string> VerifiedTemplates = new(StringComparer.Ordinal);

    /// <summary>The shared root skeleton, created once; sandboxes only ever see it read-only.</summary>
    /// <remarks>
    /// One found on disk is checked once per process before use: everything in it must be this user's and writable by
    /// nobody else (else it is made again from nothing), its /etc holds only the files it should (anything else, such
    /// as an <c>ld.so.preload</c>, is removed) and the account files are copied in again.
    /// </remarks>
    public static string RootfsTemplate(RuntimeOptions options, string name = "rootfs", bool kept = false)
    {
        name = kept ? name + "-kept" : name;
        var rootfs = Path.Combine(options.WorkRoot, "template", name);
        var ready = Path.Combine(options.WorkRoot, "template", name + ".ready-v" + TemplateVersion);
        lock (TemplateLock)
        {
            if (VerifiedTemplates.Contains(rootfs) && File.Exists(ready))
            {
                return rootfs;
            }

            if (File.Exists(ready) && !IsOwnTree(rootfs))
            {
                File.Delete(ready);
                DeleteTree(rootfs);
            }

            if (File.Exists(ready))
            {
                var etcDir = Path.Combine(rootfs, "etc");
                foreach (var entry in Directory.EnumerateFileSystemEntries(etcDir).Where(e => !TemplateEtcNames.Contains(Path.GetFileName(e))))
                {
                    DeleteTree(entry);
                }

                CopyAccounts(options, rootfs, kept);
                VerifiedTemplates.Add(rootfs);
                return rootfs;
            }

            foreach (var dir in new[] { "usr", "etc", "proc", "dev", "sys", "tmp", "scratch", "run", "run/sandstorm", "home/user" })
            {
                Directory.CreateDirectory(Path.Combine(rootfs, dir));
            }

            // runc and podman give a tmpfs the mode of the directory it is mounted on: /tmp must be world-writable and sticky.
            File.SetUnixFileMode(Path.Combine(rootfs, "tmp"), (UnixFileMode)Convert.ToInt32("1777", 8));

            foreach (var dir in HostLayout.SystemDirectories.Where(d => d != "/usr"))
            {
                var link = HostLayout.LinkTarget(dir);
                var target = Path.Combine(rootfs, dir.TrimStart('/'));
                if (link is not null && !Path.Exists(target) && new FileInfo(target).LinkTarget is null)
                {
                    File.CreateSymbolicLink(target, link);
                }
                else if (link is null && Directory.Exists(dir))
                {
                    Directory.CreateDirectory(target);
                }
            }

            // Mount points for the host /etc entries bound in (files need a file, directories a directory).
            foreach (var entry in HostLayout.EtcEntries.Where(Path.Exists))
            {
                var target = Path.Combine(rootfs, entry.TrimStart('/'));
                if (Directory.Exists(entry))
                {
                    Directory.CreateDirectory(target);
                }
                else if (!File.Exists(target))
                {
                    File.WriteAllText(target, "");
                }
            }

            CopyAccounts(options, rootfs, kept);
            File.WriteAllText(ready, "");
            VerifiedTemplates.Add(rootfs);
            return rootfs;
        }
    }

    // What a skeleton's /etc may hold: our account files, mount points for the host's entries, and what podman adds.
    private static readonly HashSet<string> TemplateEtcNames = new(
        ["passwd", "group", "hosts", "hostname", "resolv.conf", "mtab", .. HostLayout.EtcEntries.Select(Path.GetFileName)!],
        StringComparer.Ordinal);

    private static void CopyAccounts(RuntimeOptions options, string rootfs, bool kept)
    {
        var etc = kept ? HostLayout.KeptEtcTemplate(options) : HostLayout.EtcTemplate(options);
        foreach (var file in new[] { "passwd", "group", "hosts" })
        {
            var target = Path.Combine(rootfs, "etc", file);
            File.Delete(target);
            File.Copy(Path.Combine(etc, file), target);
        }
    }

    // True when everything under `root` (not following links) is this user's and nobody else may write it (a sticky
    // directory such as tmp aside).
    private static bool IsOwnTree(string root)
    {
        var uid = Libc.geteuid();
        var pending = new Stack<string>([root]);
        while (pending.TryPop(out var path))
        {
            if (Libc.LStat(path) is not { } s || s.Uid != uid)
            {
                return false;
            }

            if (s.IsSymlink)
            {
                continue;
            }

            if ((s.Permissions & 0x12) != 0 && !(s.IsDirectory && (s.Permissions & 0x200) != 0))
            {
                return false;
            }

            if (s.IsDirectory)
            {
                foreach (var entry in Directory.EnumerateFileSystemEntries(path))
                {
                    pending.Push(entry);
                }
            }
        }

        return true;
    }

    private static void DeleteTree(string path)
    {
        if (Libc.LStat(path) is { IsDirectory: true })
        {
            Directory.Delete(path, recursive: true);
        }
        else if (Libc.LStat(path) is not null)
        {
            File.Delete(path);
        }
    }

    /// <summary>Writes <c>config.json</c> into a fresh bundle directory and returns the directory.</summary>
    /// <param name="userNamespaceBase">
    /// When set, the container gets a user namespace mapping its uids and gids 0-65535 to the host's from this base: the
    /// sandbox user keeps its number inside, and is a host uid no other sandbox uses (see <see cref="RuncRuntime"/>).
    /// </param>
    /// <param name="privateRoot">
    /// When true, the container's root is a private copy of the skeleton on a tmpfs of its own (see
    /// <see cref="Scratch.CreateRoot"/>), so its mountinfo names no path of the work root; runsc serves its root through
    /// its gofer and shows no host path either way.
    /// </param>
    public static string Write(
        SandboxContext context,
        IReadOnlyList<string> args,
        IReadOnlyDictionary<string, string> env,
        string? cgroupsPath,
        IEnumerable<JsonObject> extraRlimits,
        bool refuseClone3 = true,
        int? userNamespaceBase = null,
        bool privateRoot = false)
    {
        var options = context.Options;
        var bundle = WorkRootPaths.Bundle(options, context.Id);
        Directory.CreateDirectory(bundle);
        context.BundleDirectory = bundle;

        var mounts = new JsonArray
        {
            new JsonObject { ["destination"] = "/proc", ["type"] = "proc", ["source"] = "proc", ["options"] = new JsonArray("nosuid", "noexec", "nodev") },
            new JsonObject { ["destination"] = "/dev", ["type"] = "tmpfs", ["source"] = "tmpfs", ["options"] = new JsonArray("nosuid", "strictatime", "mode=755", "size=1m") },
            new JsonObject { ["destination"] = "/dev/shm", ["type"] = "tmpfs", ["source"] = "shm", ["options"] = new JsonArray("nosuid", "nodev", "noexec", "mode=1777", $"size={options.TmpSizeMiB}m") },
            new JsonObject { ["destination"] = "/tmp", ["type"] = "tmpfs", ["source"] = "tmpfs", ["options"] = new JsonArray("nosuid", "nodev", "mode=1777", $"size={options.TmpSizeMiB}m") },
            new JsonObject { ["destination"] = "/usr", ["type"] = "bind", ["source"] = "/usr", ["options"] = new JsonArray("rbind", "ro", "nosuid", "nodev") },
        };
        foreach (var dir in HostLayout.SystemDirectories.Where(d => d != "/usr" && HostLayout.LinkTarget(d) is null && Directory.Exists(d)))
        {
            mounts.Add(new JsonObject { ["destination"] = dir, ["type"] = "bind", ["source"] = dir, ["options"] = new JsonArray("rbind", "ro", "nosuid", "nodev") });
        }

        foreach (var entry in HostLayout.EtcEntries.Where(Path.Exists))
        {
            mounts.Add(new JsonObject { ["destination"] = entry, ["type"] = "bind", ["source"] = entry, ["options"] = new JsonArray("rbind", "ro", "nosuid", "nodev") });
        }

        mounts.Add(new JsonObject { ["destination"] = context.WorkDirectory, ["type"] = "bind", ["source"] = context.Scratch!.HostPath, ["options"] = new JsonArray("rbind", "rw", "nosuid", "nodev") });

        var linux = new JsonObject
        {
            ["namespaces"] = new JsonArray(
                new JsonObject { ["type"] = "pid" },
                new JsonObject { ["type"] = "network" },
                new JsonObject { ["type"] = "ipc" },
                new JsonObject { ["type"] = "uts" },
                new JsonObject { ["type"] = "mount" },
                new JsonObject { ["type"] = "cgroup" }),
            ["resources"] = new JsonObject { ["devices"] = new JsonArray(new JsonObject { ["allow"] = false, ["access"] = "rwm" }) },
            ["maskedPaths"] = new JsonArray("/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"),
            ["readonlyPaths"] = new JsonArray("/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"),
            ["seccomp"] = SeccompPolicy.OciSection(refuseClone3),
        };
        if (cgroupsPath is not null)
        {
            linux["cgroupsPath"] = cgroupsPath;
        }

        if (userNamespaceBase is { } hostBase)
        {
            linux["namespaces"]!.AsArray().Add(new JsonObject { ["type"] = "user" });
            linux["uidMappings"] = new JsonArray(new JsonObject { ["containerID"] = 0, ["hostID"] = hostBase, ["size"] = UserNamespaceSize });
            linux["gidMappings"] = new JsonArray(new JsonObject { ["containerID"] = 0, ["hostID"] = hostBase, ["size"] = UserNamespaceSize });
        }

        var root = RootfsTemplate(options, kept: context.Kept);
        if (privateRoot)
        {
            context.PrivateRoot = Scratch.CreateRoot(options, context.Id, root);
            root = context.PrivateRoot.HostPath;
        }

        var config = new JsonObject
        {
            ["ociVersion"] = "1.0.2",
            ["process"] = Process(options, context.Command ?? args, env, extraRlimits, context.WorkDirectory),
            ["root"] = new JsonObject { ["path"] = root, ["readonly"] = true },
            ["hostname"] = "sandbox",
            ["mounts"] = mounts,
            ["linux"] = linux,
        };
        File.WriteAllText(Path.Combine(bundle, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
        return bundle;
    }

    /// <summary>
    /// Writes an OCI process (what <c>runsc exec --process</c> reads) next to the bundle of <paramref name="context"/>:
    /// the same user, capabilities (none), rlimits and no_new_privs as a bundle's own process.
    /// </summary>
    public static string WriteProcess(SandboxContext context, IReadOnlyList<string> args, IReadOnlyDictionary<string, string> env, IEnumerable<JsonObject> extraRlimits)
    {
        var path = Path.Combine(context.BundleDirectory!, "process.json");
        File.WriteAllText(path, Process(context.Options, args, env, extraRlimits, context.WorkDirectory).ToJsonString());
        return path;
    }

    private static JsonObject Process(RuntimeOptions options, IReadOnlyList<string> args, IReadOnlyDictionary<string, string> env, IEnumerable<JsonObject> extraRlimits, string cwd)
    {
        var rlimits = new JsonArray
        {
            new JsonObject { ["type"] = "RLIMIT_CORE", ["hard"] = 0, ["soft"] = 0 },
            new JsonObject { ["type"] = "RLIMIT_NOFILE", ["hard"] = 1024, ["soft"] = 1024 },
        };
        foreach (var limit in extraRlimits)
        {
            rlimits.Add(limit);
        }

        var noCaps = new JsonArray();
        return new JsonObject
        {
            ["terminal"] = false,
            ["user"] = new JsonObject { ["uid"] = options.SandboxUid, ["gid"] = options.SandboxGid },
            ["args"] = new JsonArray([.. args.Select(a => (JsonNode)JsonValue.Create(a)!)]),
            ["env"] = new JsonArray([.. env.Select(kv => (JsonNode)JsonValue.Create(kv.Key + "=" + kv.Value)!)]),
            ["cwd"] = cwd,
            ["capabilities"] = new JsonObject
            {
                ["bounding"] = noCaps.DeepClone(),
                ["effective"] = noCaps.DeepClone(),
                ["inheritable"] = noCaps.DeepClone(),
                ["permitted"] = noCaps.DeepClone(),
                ["ambient"] = noCaps.DeepClone(),
            },
            ["rlimits"] = rlimits,
            ["noNewPrivileges"] = true,
        };
    }

    /// <summary>An OCI rlimit entry.</summary>
    public static JsonObject Rlimit(string type, long value) => new() { ["type"] = type, ["hard"] = value, ["soft"] = value };

    /// <summary>Interpreter command for the code in /scratch.</summary>
    public static List<string> Command(ExecutionSpec spec)
    {
        var (command, arguments) = Languages.Interpreter(spec.Language);
        return [command, .. arguments, "/scratch/" + Languages.FileToRun(spec)];
    }
}
