namespace Sandstorm.Shield;

/// <summary>
/// One thing a sandboxed process did, as the monitor saw it (a tracepoint, gVisor's runtime monitoring, or an event the
/// monitor derived such as <c>fork_storm</c>). Field names follow Falco's where one exists: see <see cref="Fields"/>.
/// </summary>
public sealed record ShieldEvent
{
    /// <summary>Falco's <c>evt.type</c>: the syscall name (<c>execve</c>, <c>connect</c>, <c>openat</c>...) or a derived type.</summary>
    public required string Type { get; init; }

    /// <summary>When it happened (wall clock).</summary>
    public DateTimeOffset Time { get; init; }

    /// <summary>
    /// When it happened on the monotonic clock (<see cref="System.Diagnostics.Stopwatch"/> ticks, nanoseconds on Linux),
    /// if the source has one: quarantine latency is measured from it.
    /// </summary>
    public long? MonotonicTimestamp { get; init; }

    /// <summary>Falco's <c>evt.dir</c>: <c>&gt;</c> at syscall entry, <c>&lt;</c> at its exit (an exec is seen at its exit).</summary>
    public string Direction { get; init; } = ">";

    /// <summary>Falco's <c>evt.res</c>: <c>SUCCESS</c> or an errno name, when the event was seen at the syscall's exit.</summary>
    public string? Result { get; init; }

    public int Pid { get; init; }

    public int Ppid { get; init; }

    public int Uid { get; init; }

    /// <summary>Falco's <c>proc.name</c>: the process's command name (comm, up to 15 characters).</summary>
    public string? ProcessName { get; init; }

    /// <summary>Falco's <c>proc.exepath</c>: the executable the process was started from.</summary>
    public string? ExePath { get; init; }

    /// <summary>Falco's <c>proc.cmdline</c>: the name followed by the arguments, space-separated.</summary>
    public string? CommandLine { get; init; }

    /// <summary>Falco's <c>proc.args</c>: the arguments without the name.</summary>
    public string? Arguments { get; init; }

    /// <summary>Falco's <c>proc.pname</c>.</summary>
    public string? ParentName { get; init; }

    /// <summary>Falco's <c>fd.name</c>: the path of an open, or <c>ip:port</c> of a connect/bind.</summary>
    public string? FdName { get; init; }

    /// <summary>Falco's <c>fd.sip</c>/<c>fd.rip</c>: the remote (server) address of a connect, or the address of a bind.</summary>
    public string? SocketAddress { get; init; }

    /// <summary>Falco's <c>fd.sport</c>/<c>fd.rport</c>.</summary>
    public int? SocketPort { get; init; }

    /// <summary>Type of the process's stdin/stdout descriptors (<c>ipv4</c>, <c>ipv6</c>, <c>unix</c>, <c>pipe</c>, <c>file</c>...), seen at exec.</summary>
    public string? StdinType { get; init; }

    public string? StdoutType { get; init; }

    /// <summary>Syscall arguments that rules may read as <c>evt.arg.NAME</c> (uid, gid, request, pid, count...).</summary>
    public IReadOnlyDictionary<string, string>? Args { get; init; }

    /// <summary>Falco's <c>container.id</c>: the sandbox the process belongs to.</summary>
    public string? SandboxId { get; init; }

    /// <summary>The sandbox's network policy (Shield's <c>shield.egress</c>): true allowed, false denied, null unknown.</summary>
    public bool? EgressAllowed { get; init; }

    /// <summary>Where the event came from: <c>ebpf</c>, <c>gvisor</c>, <c>derived</c>.</summary>
    public string Source { get; init; } = "ebpf";
}
