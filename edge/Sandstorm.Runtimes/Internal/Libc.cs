using System.Runtime.InteropServices;

namespace Sandstorm.Runtimes.Internal;

/// <summary>The few libc calls .NET does not expose: signals to whole trees, tmpfs mounts, ownership, pidfds.</summary>
internal static class Libc
{
    public const int SIGKILL = 9;
    public const short POLLIN = 1;
    private const long SysPidfdSendSignal = 424;
    private const long SysPidfdOpen = 434;
    public const ulong MS_NOSUID = 2;
    public const ulong MS_NODEV = 4;
    public const int MNT_DETACH = 2;

    [DllImport("libc", SetLastError = true)]
    public static extern int kill(int pid, int sig);

    [DllImport("libc", SetLastError = true)]
    public static extern uint geteuid();

    [DllImport("libc", SetLastError = true)]
    public static extern int mount(string source, string target, string fstype, ulong flags, string? data);

    [DllImport("libc", SetLastError = true)]
    public static extern int umount2(string target, int flags);

    [DllImport("libc", SetLastError = true)]
    public static extern int chown(string path, int owner, int group);

    [DllImport("libc", SetLastError = true)]
    public static extern int close(int fd);

    [DllImport("libc", SetLastError = true)]
    public static extern int poll([In, Out] PollFd[] fds, nuint count, int timeoutMs);

    // glibc's syscall() only moves registers, so fixed long arguments are a safe way to call it.
    [DllImport("libc", SetLastError = true)]
    private static extern long syscall(long number, long a1, long a2, long a3, long a4);

    [DllImport("libc", SetLastError = true)]
    private static extern int fcntl(int fd, int cmd, int arg);

    private const long SysCloseRange = 436;
    private const long CloseRangeCloexec = 4;
    private const int FSetFd = 2;
    private const int FdCloexec = 1;

    [DllImport("libc", SetLastError = true)]
    public static extern int gettid();

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int OpenNative(string path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern nint read(int fd, byte[] buffer, nuint count);

    private const int ORdonly = 0;
    private const int ONonblock = 0x800;
    private const int ONofollow = 0x20000;
    private const int OCloexec = 0x80000;

    [DllImport("libc", SetLastError = true)]
    private static extern int setrlimit(int resource, ref RLimit limit);

    private const int RlimitCore = 4;

    public static bool IsRoot => geteuid() == 0;

    /// <summary>Sets this process's core-dump limit (soft and hard) to zero; every child inherits it.</summary>
    public static void DisableCoreDumps()
    {
        var none = new RLimit();
        if (setrlimit(RlimitCore, ref none) != 0)
        {
            throw new InvalidOperationException($"setrlimit(RLIMIT_CORE) failed (errno {Marshal.GetLastPInvokeError()})");
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    /// <summary>
    /// Reads at most <paramref name="max"/> bytes of a file a sandbox could have tampered with: a symlink is refused
    /// (O_NOFOLLOW), a FIFO gives nothing instead of blocking (O_NONBLOCK). Null when it cannot be opened.
    /// </summary>
    public static byte[]? ReadUntrusted(string path, int max)
    {
        var fd = OpenNative(path, ORdonly | ONofollow | ONonblock | OCloexec);
        if (fd < 0)
        {
            return null;
        }

        try
        {
            var buffer = new byte[max];
            var n = read(fd, buffer, (nuint)max);
            return n < 0 ? null : buffer[..(int)n];
        }
        finally
        {
            close(fd);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int mkfifo(string path, uint mode);

    /// <summary>
    /// Creates a FIFO only this user can open and opens its read end, non-blocking so that no writer is needed yet. Reads
    /// see end of file until a writer has opened it: start them once one has. -1 on failure.
    /// </summary>
    public static int CreateFifoForReading(string path)
    {
        if (mkfifo(path, 0x180 /* 0600 */) != 0)
        {
            return -1;
        }

        return OpenNative(path, ORdonly | ONonblock | OCloexec);
    }

    /// <summary>Opens a file (not through a final symlink) read-only <em>without</em> close-on-exec, so the next child inherits it; -1 on failure.</summary>
    public static int OpenInheritable(string path) => OpenNative(path, ORdonly | ONofollow);

    /// <summary>
    /// Marks every descriptor from <paramref name="first"/> up close-on-exec, so no child inherits one by accident
    /// (descriptors this process inherited from whoever started it, or opened by native code without O_CLOEXEC).
    /// </summary>
    public static void CloseOnExecFrom(int first)
    {
        if (syscall(SysCloseRange, first, uint.MaxValue, CloseRangeCloexec, 0) == 0)
        {
            return;
        }

        // Kernels before 5.11 have no close_range: mark each open descriptor.
        foreach (var entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (int.TryParse(Path.GetFileName(entry), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var fd) && fd >= first)
            {
                _ = fcntl(fd, FSetFd, FdCloexec);
            }
        }
    }

    /// <summary>A file descriptor that becomes readable when the process exits (-1 when it is already gone).</summary>
    public static int PidfdOpen(int pid) => (int)syscall(SysPidfdOpen, pid, 0, 0, 0);

    /// <summary>Signals exactly the process behind the pidfd, never a recycled pid.</summary>
    public static int PidfdSendSignal(int pidfd, int signal) => (int)syscall(SysPidfdSendSignal, pidfd, signal, 0, 0);

    // Descriptor-relative file calls, so that a path the sandboxed code could have changed (scratch) is walked one
    // component at a time and no symlink is ever followed.
    public const int AtFdCwd = -100;
    public const int ORdwr = 2;
    public const int OWronly = 1;
    public const int OCreat = 0x40;
    public const int OExcl = 0x80;
    public const int ODirectory = 0x10000;
    public const int ONoFollow = ONofollow;
    public const int OPath = 0x200000;
    public const int OCloexecFlag = OCloexec;
    public const int UmountNoFollow = 8;
    private const int AtSymlinkNoFollow = 0x100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasicStats = 0x7ff;

    [DllImport("libc", EntryPoint = "openat", SetLastError = true)]
    public static extern int openat(int dirfd, string path, int flags, uint mode);

    [DllImport("libc", SetLastError = true)]
    public static extern int mkdirat(int dirfd, string path, uint mode);

    [DllImport("libc", SetLastError = true)]
    public static extern int fchown(int fd, int owner, int group);

    [DllImport("libc", SetLastError = true)]
    public static extern int fchmod(int fd, uint mode);

    [DllImport("libc", SetLastError = true)]
    public static extern int chmod(string path, uint mode);

    [DllImport("libc", SetLastError = true)]
    private static extern nint write(int fd, byte[] buffer, nuint count);

    [DllImport("libc", SetLastError = true)]
    private static extern int statx(int dirfd, string path, int flags, uint mask, byte[] buffer);

    [DllImport("libc", EntryPoint = "realpath", SetLastError = true)]
    private static extern nint RealPathNative(string path, nint resolved);

    [DllImport("libc", EntryPoint = "free")]
    private static extern void Free(nint pointer);

    /// <summary>Owner, group and mode (type bits included) of a path, without following a final symlink; null when it does not exist.</summary>
    public static FileStatus? LStat(string path) => Stat(AtFdCwd, path, AtSymlinkNoFollow);

    /// <summary>Owner, group and mode of what an open descriptor refers to.</summary>
    public static FileStatus? FStat(int fd) => Stat(fd, "", AtEmptyPath);

    private static FileStatus? Stat(int dirfd, string path, int flags)
    {
        // struct statx has the same layout on every architecture: uid at 20, gid at 24, mode at 28.
        var buffer = new byte[256];
        if (statx(dirfd, path, flags, StatxBasicStats, buffer) != 0)
        {
            return null;
        }

        return new FileStatus(BitConverter.ToUInt32(buffer, 20), BitConverter.ToUInt32(buffer, 24), BitConverter.ToUInt16(buffer, 28));
    }

    /// <summary>The canonical path (symlinks resolved), or null when it does not exist.</summary>
    public static string? RealPath(string path)
    {
        var resolved = RealPathNative(path, 0);
        if (resolved == 0)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            Free(resolved);
        }
    }

    /// <summary>Writes all of <paramref name="bytes"/> to <paramref name="fd"/>; false on an error.</summary>
    public static bool WriteAll(int fd, byte[] bytes)
    {
        var done = 0;
        while (done < bytes.Length)
        {
            var chunk = done == 0 ? bytes : bytes[done..];
            var n = write(fd, chunk, (nuint)chunk.Length);
            if (n < 0)
            {
                if (Marshal.GetLastPInvokeError() == 4 /* EINTR */)
                {
                    continue;
                }

                return false;
            }

            done += (int)n;
        }

        return true;
    }

    /// <summary>What <see cref="LStat"/> tells about a file.</summary>
    public readonly record struct FileStatus(uint Uid, uint Gid, ushort Mode)
    {
        public bool IsDirectory => (Mode & 0xF000) == 0x4000;

        public bool IsRegularFile => (Mode & 0xF000) == 0x8000;

        public bool IsSymlink => (Mode & 0xF000) == 0xA000;

        /// <summary>Permission bits (and set-id/sticky bits), without the type.</summary>
        public int Permissions => Mode & 0xFFF;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }
}
