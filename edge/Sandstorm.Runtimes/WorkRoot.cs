using System.Collections.Concurrent;
using System.Globalization;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// The work root (<see cref="RuntimeOptions.WorkRoot"/>) holds what every sandbox is built from — the compiled seccomp
/// filter, the root skeleton and /etc templates — and where it runs: scratch mounts, bundles, runtime state. A local
/// user who created it first, or could write in it, could plant an allow-all filter or an <c>etc/ld.so.preload</c>, or
/// swap a scratch directory for a symlink that this process then mounts over, writes through and chowns. So it must be
/// private: a directory (not a symlink) owned by this process's user, writable by nobody else, under parents that
/// nobody else can rename it in. It is created that way (mode 0711), an existing one of ours is tightened to it, and
/// anything else is refused with the reason.
/// </summary>
/// <remarks>
/// 0711 rather than 0700: bwrap starts as the unprivileged sandbox user and must reach its scratch mount, and runc sets up
/// a container's root as the root of its user namespace, an unprivileged host uid; so the root, <c>scratch/</c> and
/// <c>template/</c> (the public root skeleton) can be traversed, not listed, by others. Every other directory in it is
/// 0700, and each scratch mount is 0700, owned by the sandbox's own user.
/// </remarks>
public static class WorkRoot
{
    /// <summary>Mode of the work root and of its <c>scratch/</c> directory.</summary>
    public const UnixFileMode TraverseOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>Mode of every other directory this library makes in the work root.</summary>
    public const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private const int GroupOrOtherWrite = 0x12; // 0022
    private const int Sticky = 0x200;           // 01000

    private static readonly ConcurrentDictionary<string, Lazy<string?>> Checked = new(StringComparer.Ordinal);

    /// <summary>The directories this library keeps in a work root, and their modes.</summary>
    private static readonly (string Name, UnixFileMode Mode)[] Directories =
    [
        ("scratch", TraverseOnly), ("bundles", Private), ("owners", Private), ("seccomp", Private), ("template", TraverseOnly),
        ("runc-state", Private), ("runsc-state", Private), ("fifo", Private), ("microvm-image", Private),
    ];

    /// <summary>
    /// Makes sure the work root is private (creating it when missing); throws <see cref="InvalidOperationException"/>
    /// naming the problem otherwise. Checked once per process and work root.
    /// </summary>
    public static void EnsurePrivate(RuntimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (Problem(options) is { } problem)
        {
            throw new InvalidOperationException(problem);
        }
    }

    /// <summary>Null when the work root is private (made so if it was missing), else why it cannot be used.</summary>
    public static string? Problem(RuntimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var root = Path.GetFullPath(options.WorkRoot);
        var check = Checked.GetOrAdd(root, r => new Lazy<string?>(() => Check(r)));
        var problem = check.Value;
        if (problem is not null)
        {
            // A refusal is not cached: the operator may fix it while the process runs.
            Checked.TryRemove(new KeyValuePair<string, Lazy<string?>>(root, check));
        }

        return problem;
    }

    private static string? Check(string root)
    {
        var parent = Path.GetDirectoryName(root) ?? "/";
        Directory.CreateDirectory(parent);
        var realParent = Libc.RealPath(parent);
        if (realParent is null)
        {
            return $"work root {root}: cannot resolve its parent directory {parent}";
        }

        // Whoever may write a parent without the sticky bit could rename the work root away and put their own in its place.
        var uid = Libc.geteuid();
        var ancestor = "/";
        foreach (var part in realParent.Split('/', StringSplitOptions.RemoveEmptyEntries).Prepend(""))
        {
            ancestor = part.Length == 0 ? "/" : Path.Combine(ancestor, part);
            var status = Libc.LStat(ancestor);
            if (status is not { IsDirectory: true } s)
            {
                return $"work root {root}: its parent {ancestor} is not a directory";
            }

            if (s.Uid != 0 && s.Uid != uid)
            {
                return $"work root {root}: its parent {ancestor} is owned by uid {s.Uid}, neither root nor this process's user (uid {uid}), who could replace the work root; choose a work root under directories of root or this user";
            }

            if ((s.Permissions & GroupOrOtherWrite) != 0 && (s.Permissions & Sticky) == 0)
            {
                return $"work root {root}: its parent {ancestor} is writable by other users (mode {Octal(s.Permissions)}) without the sticky bit, so they could replace the work root";
            }
        }

        var path = Path.Combine(realParent, Path.GetFileName(root));
        if (Libc.LStat(path) is null)
        {
            try
            {
                Directory.CreateDirectory(path, TraverseOnly);
            }
            catch (IOException)
            {
                // Created by someone else meanwhile: judged below like any existing directory.
            }
        }

        if (Owned(path, root, uid, TraverseOnly, "work root") is { } problem)
        {
            return problem;
        }

        foreach (var (name, mode) in Directories)
        {
            var directory = Path.Combine(path, name);
            if (Libc.LStat(directory) is null)
            {
                Directory.CreateDirectory(directory, mode);
            }

            if (Owned(directory, root, uid, mode, "directory") is { } inner)
            {
                return inner;
            }
        }

        return null;
    }

    // A directory of ours that no one else may write: tightened to `mode` (read bits for others dropped) if it is looser.
    private static string? Owned(string path, string root, uint uid, UnixFileMode mode, string what)
    {
        var status = Libc.LStat(path);
        if (status is not { } s)
        {
            return $"work root {root}: {path} could not be created";
        }

        if (s.IsSymlink)
        {
            return $"work root {root}: {what} {path} is a symlink; remove it (someone may have planted it) or choose another work root";
        }

        if (!s.IsDirectory)
        {
            return $"work root {root}: {what} {path} is not a directory";
        }

        if (s.Uid != uid)
        {
            return $"work root {root}: {what} {path} is owned by uid {s.Uid}, not by this process's user (uid {uid}); another user may have created it to plant filters or templates. Remove it, or choose another work root";
        }

        if ((s.Permissions & GroupOrOtherWrite) != 0)
        {
            return $"work root {root}: {what} {path} is writable by other users (mode {Octal(s.Permissions)}), so what is in it cannot be trusted. Remove it, or choose another work root";
        }

        if (s.Permissions != (int)mode)
        {
            // Ours and written by nobody else: an earlier version's 0755, say. Nothing in it can be someone else's.
            if (Libc.chmod(path, (uint)mode) != 0)
            {
                return $"work root {root}: cannot make {path} private (mode {Octal((int)mode)})";
            }
        }

        return null;
    }

    private static string Octal(int mode) => "0" + Convert.ToString(mode, 8).PadLeft(3, '0').ToString(CultureInfo.InvariantCulture);
}
