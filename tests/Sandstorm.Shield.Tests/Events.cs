using Sandstorm.Shield;

namespace Sandstorm.Shield.Tests;

/// <summary>Realistic events, shaped as the monitor produces them.</summary>
internal static class Events
{
    public static readonly DateTimeOffset At = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public static ShieldEvent Exec(string exe, string cmdline, string? stdin = "pipe", string? stdout = "pipe", string parent = "python3") => new()
    {
        Type = "execve",
        Direction = "<",
        Time = At,
        Pid = 4242,
        Ppid = 4241,
        Uid = 65534,
        ProcessName = Path.GetFileName(exe),
        ExePath = exe,
        CommandLine = cmdline,
        Arguments = cmdline.Contains(' ', StringComparison.Ordinal) ? cmdline[(cmdline.IndexOf(' ', StringComparison.Ordinal) + 1)..] : string.Empty,
        ParentName = parent,
        StdinType = stdin,
        StdoutType = stdout,
        SandboxId = "ss0123456789abcdef",
    };

    public static ShieldEvent Open(string path, string process = "python3") => new()
    {
        Type = "openat",
        Time = At,
        Pid = 4242,
        Uid = 65534,
        ProcessName = process,
        CommandLine = process + " main.py",
        FdName = path,
        SandboxId = "ss0123456789abcdef",
    };

    public static ShieldEvent Connect(string ip, int port, bool? egressAllowed = false) => new()
    {
        Type = "connect",
        Time = At,
        Pid = 4242,
        Uid = 65534,
        ProcessName = "python3",
        CommandLine = "python3 main.py",
        FdName = ip + ":" + port,
        SocketAddress = ip,
        SocketPort = port,
        EgressAllowed = egressAllowed,
        SandboxId = "ss0123456789abcdef",
    };

    public static ShieldEvent Syscall(string type, params (string Name, string Value)[] args) => new()
    {
        Type = type,
        Time = At,
        Pid = 4242,
        Uid = 65534,
        ProcessName = "python3",
        CommandLine = "python3 main.py",
        Args = args.ToDictionary(a => a.Name, a => a.Value),
        SandboxId = "ss0123456789abcdef",
    };

    public static ShieldEvent ForkStorm(int count) => new()
    {
        Type = "fork_storm",
        Time = At,
        Source = "derived",
        Args = new Dictionary<string, string> { ["count"] = count.ToString(System.Globalization.CultureInfo.InvariantCulture), ["window_ms"] = "1000" },
        SandboxId = "ss0123456789abcdef",
    };
}
