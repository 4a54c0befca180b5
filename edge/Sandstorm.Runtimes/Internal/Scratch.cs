using System.Runtime.InteropServices;
using System.Text;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// The per-execution working directory that becomes <c>/scratch</c>. As root it is a size-capped tmpfs so code
/// cannot fill the host's disk; elsewhere a plain directory. Either way it is mode 0700, owned by the sandbox's user.
/// </summary>
/// <remarks>
/// Whatever is in a scratch may have been put there by sandboxed code (a warm or kept sandbox's), so it is never
/// written through a path: the directory is opened without following a symlink, every file and directory in it is
/// created relative to its parent's descriptor one component at a time (<c>O_NOFOLLOW</c>, <c>O_EXCL</c>), and
/// ownership is set on the open descriptor. The mount itself goes onto a descriptor of the directory just made.
/// </remarks>
internal sealed class Scratch
{
    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    private const int EExist = 17;
    private const int ENotDir = 20;
    private const int ELoop = 40;
    private const int ENameTooLong = 36;
    private const uint DirectoryMode = 0x1ED; // 0755
    private const uint FileMode = 0x1A4;      // 0644
    private const uint PrivateMode = 0x1C0;   // 0700

    private Scratch(string path, bool mounted)
    {
        HostPath = path;
        Mounted = mounted;
    }

    public string HostPath { get; }

    public bool Mounted { get; }

    /// <summary>An empty scratch with the code and files of <paramref name="spec"/> written into it.</summary>
    /// <param name="owner">The sandbox user who owns the scratch and everything in it; null keeps this process's user.</param>
    public static Scratch Create(RuntimeOptions options, string id, ExecutionSpec spec, (int Uid, int Gid)? owner)
    {
        var scratch = CreateEmpty(options, id, owner);
        try
        {
            scratch.Populate(spec, owner);
            return scratch;
        }
        catch
        {
            scratch.Remove();
            throw;
        }
    }

    /// <summary>The scratch of an execution that may exist from before (to remove it).</summary>
    public static Scratch Existing(RuntimeOptions options, string id) => new(Path.Combine(WorkRootPaths.ScratchRoot(options), id), mounted: true);

    /// <summary>An empty, size-capped scratch directory (a tmpfs when running as root), mode 0700.</summary>
    public static Scratch CreateEmpty(RuntimeOptions options, string id, (int Uid, int Gid)? owner, int? sizeMiB = null)
    {
        var root = WorkRootPaths.ScratchRoot(options);
        using var parent = Descriptor.OpenDirectory(Libc.AtFdCwd, root);
        if (Libc.mkdirat(parent.Fd, id, PrivateMode) != 0)
        {
            throw new IOException($"cannot create scratch {id} in {root} ({Errno()})");
        }

        var path = Path.Combine(root, id);
        var mounted = false;
        using (var directory = Descriptor.OpenDirectory(parent.Fd, id))
        {
            if (Libc.IsRoot)
            {
                // Mounted on the directory just made, through its descriptor: never on whatever a path would lead to.
                var ownership = owner is { } o ? $",uid={o.Uid},gid={o.Gid}" : "";
                mounted = Libc.mount("tmpfs", $"/proc/self/fd/{directory.Fd}", "tmpfs", Libc.MS_NOSUID | Libc.MS_NODEV, $"size={sizeMiB ?? options.ScratchSizeMiB}m,mode=0700{ownership}") == 0;
            }

            if (!mounted && owner is { } user && Libc.fchown(directory.Fd, user.Uid, user.Gid) != 0)
            {
                throw new IOException($"cannot give scratch {id} to uid {user.Uid} ({Errno()})");
            }
        }

        return new Scratch(path, mounted);
    }

    /// <summary>Suffix of an execution's private root (<see cref="CreateRoot"/>) beside its scratch.</summary>
    public const string RootSuffix = ".root";

    /// <summary>
    /// A copy of the root skeleton <paramref name="template"/> on a tmpfs of its own (<c>scratch/&lt;id&gt;.root</c>, mode
    /// 0755, owned by this process's user), for runtimes whose container root is a bind mount of a host directory: the
    /// sandbox's mountinfo names a bind's path in its host filesystem, so a root bound from the shared skeleton would show
    /// the work root's path inside; this one shows <c>/</c>. The skeleton is small (directories, links, three /etc files).
    /// An ordinary user cannot mount, so there it is a plain directory (and the sandbox's mountinfo names its path).
    /// </summary>
    public static Scratch CreateRoot(RuntimeOptions options, string id, string template)
    {
        var name = id + RootSuffix;
        var root = WorkRootPaths.ScratchRoot(options);
        using var parent = Descriptor.OpenDirectory(Libc.AtFdCwd, root);
        if (Libc.mkdirat(parent.Fd, name, DirectoryMode) != 0)
        {
            throw new IOException($"cannot create root {name} in {root} ({Errno()})");
        }

        var path = Path.Combine(root, name);
        if (!Libc.IsRoot)
        {
            // An ordinary user cannot mount: a plain directory of this user's, which the container's root (this user) reads.
            var plain = new Scratch(path, mounted: false);
            try
            {
                CopyTree(template, path);
                return plain;
            }
            catch
            {
                plain.Remove();
                throw;
            }
        }

        using (var directory = Descriptor.OpenDirectory(parent.Fd, name))
        {
            if (Libc.mount("sandstorm-root", $"/proc/self/fd/{directory.Fd}", "tmpfs", Libc.MS_NOSUID | Libc.MS_NODEV, "size=1m,mode=0755") != 0)
            {
                var error = Errno();
                Directory.Delete(path);
                throw new IOException($"cannot mount the root of {id} ({error})");
            }
        }

        var created = new Scratch(path, mounted: true);
        try
        {
            // A fresh tmpfs only this process's user can write, filled before any sandbox sees it: paths are safe here.
            CopyTree(template, path);
            return created;
        }
        catch
        {
            created.Remove();
            throw;
        }
    }

    private static void CopyTree(string from, string to)
    {
        foreach (var entry in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            var target = Path.Combine(to, entry.Name);
            if (entry.LinkTarget is { } link)
            {
                File.CreateSymbolicLink(target, link);
            }
            else if (entry is DirectoryInfo directory)
            {
                Directory.CreateDirectory(target, directory.UnixFileMode);
                File.SetUnixFileMode(target, directory.UnixFileMode);
                CopyTree(directory.FullName, target);
            }
            else
            {
                File.Copy(entry.FullName, target);
            }
        }
    }

    /// <summary>Writes the main file (unless an entry point among the files runs) and the extra files; the caller removes the scratch if this throws.</summary>
    public void Populate(ExecutionSpec spec, (int Uid, int Gid)? owner)
    {
        using var directory = Descriptor.OpenDirectory(Libc.AtFdCwd, HostPath);
        if (spec.EntryPoint is null)
        {
            WriteNew(directory.Fd, Languages.MainFile(spec.Language), spec.Code, owner);
        }

        foreach (var (name, content) in spec.Files ?? new Dictionary<string, string>())
        {
            WriteNew(directory.Fd, name, content ?? "", owner);
        }
    }

    /// <summary>Creates a file that must not exist yet (relative to the scratch), owned by <paramref name="owner"/>.</summary>
    public void WriteFile(string relative, string content, (int Uid, int Gid)? owner)
    {
        using var directory = Descriptor.OpenDirectory(Libc.AtFdCwd, HostPath);
        WriteNew(directory.Fd, relative, content, owner);
    }

    public void Remove()
    {
        if (Mounted)
        {
            Libc.umount2(HostPath, Libc.MNT_DETACH | Libc.UmountNoFollow);
        }

        try
        {
            Directory.Delete(HostPath, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Directories made read-only by the sandboxed code: make them writable and retry once. Links are skipped:
            // a chmod through one would change whatever it points to on the host.
            foreach (var entry in Directory.EnumerateFileSystemEntries(HostPath, "*", SearchOption.AllDirectories).Prepend(HostPath))
            {
                if (Libc.LStat(entry) is { IsDirectory: true })
                {
                    _ = Libc.chmod(entry, PrivateMode);
                }
            }

            Directory.Delete(HostPath, recursive: true);
        }
    }

    // Walks `relative` one component at a time from `root`, creating directories as needed, then creates the file.
    private static void WriteNew(int root, string relative, string content, (int Uid, int Gid)? owner)
    {
        var parts = relative.Split('/');
        if (string.IsNullOrEmpty(relative) || relative.Contains('\0', StringComparison.Ordinal) || parts.Any(p => p.Length == 0 || p is "." or ".."))
        {
            throw new ArgumentException($"file name '{relative}' must be a relative path without empty, '.' or '..' parts", nameof(relative));
        }

        var opened = new List<Descriptor>();
        try
        {
            var current = root;
            for (var i = 0; i < parts.Length - 1; i++)
            {
                var made = Libc.mkdirat(current, parts[i], DirectoryMode) == 0;
                if (!made && Marshal.GetLastPInvokeError() != EExist)
                {
                    throw Refused(relative, parts[i]);
                }

                var next = Libc.openat(current, parts[i], Libc.ODirectory | Libc.ONoFollow | Libc.OCloexecFlag, 0);
                if (next < 0)
                {
                    // A file, a link or anything else that is not a directory of ours stands where the directory should be.
                    throw Refused(relative, parts[i]);
                }

                opened.Add(new Descriptor(next));
                if (made && owner is { } o)
                {
                    _ = Libc.fchown(next, o.Uid, o.Gid);
                }

                current = next;
            }

            var fd = Libc.openat(current, parts[^1], Libc.OWronly | Libc.OCreat | Libc.OExcl | Libc.ONoFollow | Libc.OCloexecFlag, FileMode);
            if (fd < 0)
            {
                throw Refused(relative, parts[^1]);
            }

            using var file = new Descriptor(fd);
            if (!Libc.WriteAll(fd, Utf8NoBom.GetBytes(content)))
            {
                throw new IOException($"cannot write '{relative}' ({Errno()})");
            }

            if (owner is { } user && Libc.fchown(fd, user.Uid, user.Gid) != 0)
            {
                throw new IOException($"cannot give '{relative}' to uid {user.Uid} ({Errno()})");
            }
        }
        finally
        {
            foreach (var descriptor in opened)
            {
                descriptor.Dispose();
            }
        }
    }

    private static Exception Refused(string relative, string part)
    {
        var errno = Marshal.GetLastPInvokeError();
        return errno switch
        {
            EExist => new ArgumentException($"file name '{relative}': '{part}' already exists (two files, or a file and a directory, with the same name)", nameof(relative)),
            ENotDir or ELoop => new ArgumentException($"file name '{relative}': '{part}' is not a directory (a file of that name was given, or it is a link)", nameof(relative)),
            ENameTooLong => new ArgumentException($"file name '{relative}': '{part}' is longer than 255 bytes", nameof(relative)),
            _ => new IOException($"cannot create '{relative}' ({Errno(errno)})"),
        };
    }

    private static string Errno(int? errno = null) => new System.ComponentModel.Win32Exception(errno ?? Marshal.GetLastPInvokeError()).Message;

    /// <summary>An open descriptor, closed on dispose.</summary>
    private sealed class Descriptor(int fd) : IDisposable
    {
        public int Fd { get; } = fd;

        /// <summary>Opens a directory by a path whose last component must not be a symlink.</summary>
        public static Descriptor OpenDirectory(int dirfd, string path)
        {
            var fd = Libc.openat(dirfd, path, Libc.ODirectory | Libc.ONoFollow | Libc.OCloexecFlag, 0);
            return fd >= 0 ? new Descriptor(fd) : throw new IOException($"cannot open directory {path} ({Errno()})");
        }

        public void Dispose() => Libc.close(Fd);
    }
}
