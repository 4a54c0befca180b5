using System.Globalization;

namespace Sandstorm.Shield;

/// <summary>How a field's values compare: as text, or as integers (which also allows &lt; &gt; &lt;= &gt;=).</summary>
public enum FieldKind
{
    Text,
    Number,

    /// <summary><c>evt.arg.*</c>: text, compared as integers by the numeric operators.</summary>
    Argument,
}

/// <summary>A field of the condition language: its Falco name, kind and how it is read from an event.</summary>
public sealed record FieldDefinition(string Name, FieldKind Kind, string Description, Func<ShieldEvent, string?> Read);

/// <summary>
/// The fields Shield's rules can use, a subset of Falco's <c>syscall</c> source with Falco's names and meanings.
/// Anything else is rejected when a rule file is loaded.
/// </summary>
public static class Fields
{
    /// <summary>Argument names an event may carry as <c>evt.arg.NAME</c>.</summary>
    public static readonly IReadOnlySet<string> ArgumentNames = new HashSet<string>(StringComparer.Ordinal)
    {
        "uid", "gid", "request", "pid", "count", "window_ms", "flags", "name", "fd", "type",
    };

    private static readonly Dictionary<string, FieldDefinition> All = new FieldDefinition[]
    {
        new("evt.type", FieldKind.Text, "event type: the syscall's name (execve, connect, openat, setuid, ptrace...) or a derived type (fork_storm)", e => e.Type),
        new("evt.dir", FieldKind.Text, "> at syscall entry, < at exit", e => e.Direction),
        new("evt.res", FieldKind.Text, "SUCCESS or the errno name, for events seen at a syscall's exit", e => e.Result),
        new("evt.time", FieldKind.Text, "event time, HH:mm:ss.fffffff (UTC)", e => e.Time.UtcDateTime.ToString("HH:mm:ss.fffffff", CultureInfo.InvariantCulture)),
        new("evt.time.iso8601", FieldKind.Text, "event time in ISO 8601 (UTC)", e => e.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture)),
        new("evt.source", FieldKind.Text, "where the event came from: ebpf, gvisor, derived", e => e.Source),
        new("proc.name", FieldKind.Text, "process name (comm, up to 15 characters)", e => e.ProcessName),
        new("proc.exepath", FieldKind.Text, "path of the executable", e => e.ExePath),
        new("proc.cmdline", FieldKind.Text, "name and arguments, space-separated", e => e.CommandLine),
        new("proc.args", FieldKind.Text, "arguments, space-separated", e => e.Arguments),
        new("proc.pname", FieldKind.Text, "parent process name", e => e.ParentName),
        new("proc.pid", FieldKind.Number, "process id (host)", e => e.Pid.ToString(CultureInfo.InvariantCulture)),
        new("proc.ppid", FieldKind.Number, "parent process id (host)", e => e.Ppid.ToString(CultureInfo.InvariantCulture)),
        new("proc.stdin.type", FieldKind.Text, "type of fd 0 at exec: ipv4, ipv6, unix, socket, pipe, file, char, other", e => e.StdinType),
        new("proc.stdout.type", FieldKind.Text, "type of fd 1 at exec", e => e.StdoutType),
        new("user.uid", FieldKind.Number, "user id (as the host sees it)", e => e.Uid.ToString(CultureInfo.InvariantCulture)),
        new("fd.name", FieldKind.Text, "path of an open; ip:port of a connect or bind", e => e.FdName),
        new("fd.directory", FieldKind.Text, "directory part of fd.name (opens)", e => DirectoryOf(e.FdName)),
        new("fd.filename", FieldKind.Text, "file-name part of fd.name (opens)", e => FileNameOf(e.FdName)),
        new("fd.sip", FieldKind.Text, "server address of a connect (the remote end), address of a bind", e => e.SocketAddress),
        new("fd.rip", FieldKind.Text, "remote address of a connect", e => e.SocketAddress),
        new("fd.sport", FieldKind.Number, "server port of a connect, port of a bind", e => e.SocketPort?.ToString(CultureInfo.InvariantCulture)),
        new("fd.rport", FieldKind.Number, "remote port of a connect", e => e.SocketPort?.ToString(CultureInfo.InvariantCulture)),
        new("container.id", FieldKind.Text, "the sandbox id", e => e.SandboxId),

        // Not Falco's: the sandbox's own policy, which Falco cannot know.
        new("shield.egress", FieldKind.Text, "the sandbox's network policy: allowed or denied", e => e.EgressAllowed switch { true => "allowed", false => "denied", null => null }),
    }.ToDictionary(f => f.Name, StringComparer.Ordinal);

    /// <summary>Every field, for documentation and error messages.</summary>
    public static IEnumerable<FieldDefinition> Known => All.Values;

    /// <summary>Looks a field up by its Falco name, including <c>evt.arg.NAME</c> for the names in <see cref="ArgumentNames"/>.</summary>
    public static bool TryGet(string name, out FieldDefinition field)
    {
        if (All.TryGetValue(name, out field!))
        {
            return true;
        }

        if (name.StartsWith("evt.arg.", StringComparison.Ordinal) && ArgumentNames.Contains(name["evt.arg.".Length..]))
        {
            var argument = name["evt.arg.".Length..];
            field = new FieldDefinition(name, FieldKind.Argument, "syscall argument " + argument, e => e.Args is not null && e.Args.TryGetValue(argument, out var v) ? v : null);
            return true;
        }

        return false;
    }

    private static string? DirectoryOf(string? path)
    {
        if (path is null || !path.Contains('/', StringComparison.Ordinal))
        {
            return null;
        }

        var slash = path.LastIndexOf('/');
        return slash == 0 ? "/" : path[..slash];
    }

    private static string? FileNameOf(string? path) => path is null ? null : path[(path.LastIndexOf('/') + 1)..];
}
