using System.Runtime.InteropServices;

namespace Sandstorm.Runtimes.Shield;

/// <summary>The libc calls the monitor needs: a directory's inode (a cgroup's id), CPU pinning, a marker syscall.</summary>
internal static class ShieldNative
{
    [DllImport("libc", SetLastError = true, EntryPoint = "stat")]
    private static extern int Stat(string path, byte[] buffer);

    [DllImport("libc", SetLastError = true, EntryPoint = "sched_setaffinity")]
    private static extern int SetAffinity(int pid, nuint size, byte[] mask);

    [DllImport("libc", SetLastError = true, EntryPoint = "getpgid")]
    public static extern int GetPgid(int pid);

    /// <summary>The inode number of a path (x86_64 <c>struct stat</c>: st_ino at offset 8), or null.</summary>
    public static ulong? InodeOf(string path)
    {
        var buffer = new byte[256];
        return Stat(path, buffer) == 0 ? BitConverter.ToUInt64(buffer, 8) : null;
    }

    /// <summary>Pins the calling thread to one CPU; false if the CPU is not available.</summary>
    public static bool PinToCpu(int cpu)
    {
        var mask = new byte[128];
        mask[cpu / 8] = (byte)(1 << (cpu % 8));
        return SetAffinity(0, (nuint)mask.Length, mask) == 0;
    }

    /// <summary>Lets the calling thread run on every CPU again.</summary>
    public static void Unpin()
    {
        var mask = new byte[128];
        Array.Fill(mask, (byte)0xff);
        SetAffinity(0, (nuint)mask.Length, mask);
    }
}
