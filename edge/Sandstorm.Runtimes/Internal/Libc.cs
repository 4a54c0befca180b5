using System.Runtime.InteropServices;

namespace Sandstorm.Runtimes.Internal;

/// <summary>The few libc calls .NET does not expose: signals to whole trees, tmpfs mounts, ownership.</summary>
internal static class Libc
{
    public const int SIGKILL = 9;
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

    public static bool IsRoot => geteuid() == 0;
}
