using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Sandstorm.Shield;

namespace Sandstorm.Runtimes.Shield;

/// <summary>
/// gVisor's runtime monitoring for Shield. Inside gVisor the code's syscalls are served by the sentry, so host
/// tracepoints see only the sentry; runsc instead reports trace points (a "trace session" given at boot with
/// <c>--pod-init-config</c>) to a "remote" sink: each sandbox connects to this unix SOCK_SEQPACKET socket, the two sides
/// exchange a handshake (protobuf <c>Handshake{version}</c>), then every message is an 8-byte header
/// (<c>u16 header size, u16 message type, u32 dropped count</c>) followed by a protobuf payload. Field numbers are those
/// of runsc 20221219's <c>pkg/sentry/seccheck/points/*.proto</c>. The sentry is not trusted: every length is checked.
/// </summary>
internal sealed class GvisorTraceSource : IDisposable
{
    private const int WireVersion = 2;

    // Message types of common.proto's MessageType.
    private const int ContainerStart = 1;
    private const int SentryExec = 3;
    private const int SyscallRaw = 6;
    private const int SyscallOpen = 7;
    private const int SyscallConnect = 10;
    private const int SyscallSetid = 14;
    private const int SyscallSetresid = 15;
    private const int SyscallBind = 24;

    // x86_64 syscalls reported as raw points (number and arguments).
    private static readonly Dictionary<ulong, string> RawSyscalls = new()
    {
        [50] = "listen", [56] = "clone", [57] = "fork", [58] = "vfork", [101] = "ptrace", [113] = "setreuid", [114] = "setregid",
        [122] = "setfsuid", [123] = "setfsgid", [126] = "capset", [155] = "pivot_root", [165] = "mount", [166] = "umount2",
        [175] = "init_module", [176] = "delete_module", [272] = "unshare", [308] = "setns", [313] = "finit_module", [321] = "bpf",
    };

    private static readonly string[] ContextFields = ["time", "group_id", "container_id", "credentials", "cwd", "process_name"];

    private readonly Socket listener;
    private readonly Action<string, ShieldEvent> onEvent;
    private readonly TimeProvider time;
    private readonly CancellationTokenSource stop = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TaskCompletionSource> connections = new(StringComparer.Ordinal);
    private long dropped;

    private GvisorTraceSource(Socket listener, string configPath, Action<string, ShieldEvent> onEvent, TimeProvider time)
    {
        this.listener = listener;
        ConfigPath = configPath;
        this.onEvent = onEvent;
        this.time = time;
        _ = Task.Run(AcceptAsync);
    }

    public string ConfigPath { get; }

    public long Dropped => Interlocked.Read(ref dropped);

    /// <summary>
    /// Waits until the sandbox's connection has closed (its sentry exits with the sandbox, after sending what it had),
    /// bounded by <paramref name="timeout"/>; returns at once for a sandbox that never connected.
    /// </summary>
    public async Task DrainAsync(string sandboxId, TimeSpan timeout)
    {
        if (connections.TryGetValue(sandboxId, out var closed))
        {
            try
            {
                await closed.Task.WaitAsync(timeout);
            }
            catch (TimeoutException)
            {
            }

            connections.TryRemove(new KeyValuePair<string, TaskCompletionSource>(sandboxId, closed));
        }
    }

    public static GvisorTraceSource Start(ShieldMonitorOptions options, Action<string, ShieldEvent> onEvent)
    {
        var socketPath = Path.Combine(options.WorkRoot, "gvisor.sock");
        File.Delete(socketPath);
        var listener = new Socket(AddressFamily.Unix, SocketType.Seqpacket, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            listener.Listen(64);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        var configPath = Path.Combine(options.WorkRoot, "gvisor-trace.json");
        File.WriteAllText(configPath, Config(socketPath));
        return new GvisorTraceSource(listener, configPath, onEvent, options.TimeProvider);
    }

    /// <summary>The trace session runsc loads at boot: the points Shield's rules use, sent to the remote sink.</summary>
    internal static string Config(string socketPath)
    {
        var points = new List<object>
        {
            Point("container/start"),
            Point("sentry/execve"),
            Point("syscall/open/enter"),
            Point("syscall/openat/enter"),
            Point("syscall/connect/enter"),
            Point("syscall/bind/enter"),
            Point("syscall/setuid/enter"),
            Point("syscall/setgid/enter"),
            Point("syscall/setresuid/enter"),
            Point("syscall/setresgid/enter"),
        };
        points.AddRange(RawSyscalls.Keys.Select(n => Point("syscall/sysno/" + n.ToString(CultureInfo.InvariantCulture) + "/enter")));
        var config = new
        {
            trace_session = new
            {
                name = "Default",
                points,
                sinks = new[] { new { name = "remote", config = new { endpoint = socketPath } } },
            },
        };
        return JsonSerializer.Serialize(config);

        static object Point(string name) => new { name, context_fields = ContextFields };
    }

    private async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await listener.AcceptAsync(stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(connection));
        }
    }

    private async Task ServeAsync(Socket connection)
    {
        string? container = null;
        using var owned = connection;
        try
        {
            var buffer = new byte[1 << 17];
            try
            {
                // The sentry speaks first; we answer with our version (it continues if ours is at least its minimum).
                var read = await connection.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                if (read <= 0)
                {
                    return;
                }

                await connection.SendAsync(new byte[] { 0x08, WireVersion }, SocketFlags.None, stop.Token);
                long lastDropped = 0;
                while (true)
                {
                    read = await connection.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                    if (read <= 0)
                    {
                        return;
                    }

                    if (read < 8)
                    {
                        continue;
                    }

                    var headerSize = BinaryPrimitives.ReadUInt16LittleEndian(buffer);
                    var type = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(2));
                    var droppedNow = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4));
                    if (droppedNow > lastDropped)
                    {
                        Interlocked.Add(ref dropped, droppedNow - lastDropped);
                        lastDropped = droppedNow;
                    }

                    if (headerSize < 8 || headerSize > read)
                    {
                        continue;
                    }

                    try
                    {
                        if (container is null && ContainerOf(buffer.AsSpan(headerSize, read - headerSize)) is { } id)
                        {
                            container = id;
                            connections[id] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        }

                        if (Decode(type, buffer.AsSpan(headerSize, read - headerSize), time) is { } decoded)
                        {
                            onEvent(decoded.SandboxId!, decoded);
                        }
                    }
                    catch (FormatException)
                    {
                        // A malformed point from a compromised sentry: skipped, monitoring goes on.
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }
        finally
        {
            if (container is not null && connections.TryGetValue(container, out var closed))
            {
                closed.TrySetResult();
            }
        }
    }

    // Every point's payload starts with its context (field 1), which names the container.
    private static string? ContainerOf(ReadOnlySpan<byte> payload)
    {
        var reader = new ProtoReader(payload);
        while (reader.Next(out var field, out var wire))
        {
            if (field == 1 && wire == 2)
            {
                return ReadContext(reader.ReadBytes()).ContainerId is { Length: > 0 } id ? id : null;
            }

            reader.Skip(wire);
        }

        return null;
    }

    /// <summary>Turns one trace point into an event (with its container id as the sandbox id), or null if it is not one Shield uses.</summary>
    internal static ShieldEvent? Decode(int type, ReadOnlySpan<byte> payload, TimeProvider time)
    {
        if (type is ContainerStart or not (SentryExec or SyscallRaw or SyscallOpen or SyscallConnect or SyscallSetid or SyscallSetresid or SyscallBind))
        {
            return null;
        }

        var context = new Context();
        string? path = null, binary = null;
        var argv = new List<string>();
        byte[]? address = null;
        ulong sysno = 0;
        var numbers = new ulong[11];
        var reader = new ProtoReader(payload);
        while (reader.Next(out var field, out var wire))
        {
            if (field == 1 && wire == 2)
            {
                context = ReadContext(reader.ReadBytes());
                continue;
            }

            switch (type, field, wire)
            {
                case (SentryExec, 2, 2):
                    binary = reader.ReadString();
                    break;
                case (SentryExec, 3, 2) when argv.Count < 256:
                    argv.Add(reader.ReadString());
                    break;
                case (SyscallOpen, 6, 2):
                    path = reader.ReadString();
                    break;
                case (SyscallConnect or SyscallBind, 6, 2):
                    address = reader.ReadBytes().ToArray();
                    break;
                case (SyscallRaw, 4, 0):
                    sysno = reader.ReadVarint();
                    break;
                case (_, >= 3 and <= 10, 0):
                    numbers[field] = reader.ReadVarint();
                    break;
                default:
                    reader.Skip(wire);
                    break;
            }
        }

        if (string.IsNullOrEmpty(context.ContainerId))
        {
            return null;
        }

        var wall = context.TimeNs > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(context.TimeNs / 1_000_000).AddTicks(context.TimeNs % 1_000_000 / 100) : time.GetUtcNow();
        var ago = time.GetUtcNow() - wall;
        var e = new ShieldEvent
        {
            Type = "unknown",
            Time = wall,
            MonotonicTimestamp = Stopwatch.GetTimestamp() - (long)(Math.Max(0, ago.TotalSeconds) * Stopwatch.Frequency),
            Pid = context.Pid,
            Uid = (int)context.Uid,
            ProcessName = context.ProcessName,
            CommandLine = context.ProcessName,
            SandboxId = context.ContainerId,
            Source = "gvisor",
        };
        switch (type)
        {
            case SentryExec:
            {
                var arguments = string.Join(' ', argv.Skip(1));
                var name = binary is null ? context.ProcessName : Path.GetFileName(binary);
                return e with
                {
                    Type = "execve",
                    Direction = "<",
                    Result = "SUCCESS",
                    ProcessName = name is { Length: > 15 } ? name[..15] : name,
                    ExePath = binary,
                    CommandLine = name + (arguments.Length > 0 ? " " + arguments : string.Empty),
                    Arguments = arguments,
                };
            }

            case SyscallOpen:
                var absolute = path is null || path.StartsWith('/') || string.IsNullOrEmpty(context.Cwd) ? path : context.Cwd.TrimEnd('/') + "/" + path;
                return e with { Type = numbers[3] == 2 ? "open" : "openat", FdName = absolute };
            case SyscallConnect or SyscallBind:
                if (address is null || address.Length < 8)
                {
                    return null;
                }

                var family = BinaryPrimitives.ReadUInt16LittleEndian(address);
                if (family is not (2 or 10) || (family == 10 && address.Length < 24))
                {
                    return null;
                }

                var port = BinaryPrimitives.ReadUInt16BigEndian(address.AsSpan(2));
                var ip = family == 2 ? new System.Net.IPAddress(address.AsSpan(4, 4)) : new System.Net.IPAddress(address.AsSpan(8, 16));
                var text = ip.ToString();
                return e with
                {
                    Type = type == SyscallConnect ? "connect" : "bind",
                    SocketAddress = text,
                    SocketPort = port,
                    FdName = (family == 10 ? "[" + text + "]" : text) + ":" + port.ToString(CultureInfo.InvariantCulture),
                };
            case SyscallSetid:
            {
                var syscall = numbers[3] == 106 ? "setgid" : "setuid";
                return e with { Type = syscall, Args = Args((syscall == "setgid" ? "gid" : "uid", ((uint)numbers[4]).ToString(CultureInfo.InvariantCulture))) };
            }

            case SyscallSetresid:
            {
                var syscall = numbers[3] == 119 ? "setresgid" : "setresuid";
                var ids = new[] { numbers[4], numbers[5], numbers[6] }.Select(v => (uint)v).Where(v => v != uint.MaxValue).ToList();
                return e with { Type = syscall, Args = ids.Count == 0 ? null : Args((syscall == "setresgid" ? "gid" : "uid", ids.Min().ToString(CultureInfo.InvariantCulture))) };
            }

            default:
            {
                if (!RawSyscalls.TryGetValue(sysno, out var name))
                {
                    return null;
                }

                // Raw points carry the arguments as numbers (fields 5..10).
                var arg1 = numbers[5];
                var args = name switch
                {
                    "ptrace" => Args(("request", BpftraceSource.PtraceRequest((long)arg1)), ("pid", ((long)numbers[6]).ToString(CultureInfo.InvariantCulture))),
                    "setreuid" or "setfsuid" => UidArg("uid", arg1, name == "setreuid" ? numbers[6] : uint.MaxValue),
                    "setregid" or "setfsgid" => UidArg("gid", arg1, name == "setregid" ? numbers[6] : uint.MaxValue),
                    "clone" or "unshare" => Args(("flags", arg1.ToString(CultureInfo.InvariantCulture))),
                    _ => null,
                };
                if (name == "clone" && (arg1 & 0x10000) != 0)
                {
                    // A new thread, not a process.
                    return null;
                }

                return e with { Type = name, Args = args };
            }
        }
    }

    private static Dictionary<string, string>? UidArg(string name, ulong a, ulong b)
    {
        var ids = new[] { (uint)a, (uint)b }.Where(v => v != uint.MaxValue).ToList();
        return ids.Count == 0 ? null : Args((name, ids.Min().ToString(CultureInfo.InvariantCulture)));
    }

    private static Dictionary<string, string> Args(params (string Name, string Value)[] args) => args.ToDictionary(a => a.Name, a => a.Value, StringComparer.Ordinal);

    private static Context ReadContext(ReadOnlySpan<byte> bytes)
    {
        var context = new Context();
        var reader = new ProtoReader(bytes);
        while (reader.Next(out var field, out var wire))
        {
            switch (field, wire)
            {
                case (1, 0): context.TimeNs = (long)reader.ReadVarint(); break;
                case (4, 0): context.Pid = (int)reader.ReadVarint(); break;
                case (6, 2): context.ContainerId = reader.ReadString(); break;
                case (7, 2):
                {
                    var credentials = new ProtoReader(reader.ReadBytes());
                    while (credentials.Next(out var f, out var w))
                    {
                        if (f == 2 && w == 0)
                        {
                            context.Uid = (uint)credentials.ReadVarint();
                        }
                        else
                        {
                            credentials.Skip(w);
                        }
                    }

                    break;
                }

                case (8, 2): context.Cwd = reader.ReadString(); break;
                case (9, 2): context.ProcessName = reader.ReadString(); break;
                default: reader.Skip(wire); break;
            }
        }

        return context;
    }

    public void Dispose()
    {
        stop.Cancel();
        listener.Dispose();
        stop.Dispose();
    }

    private sealed class Context
    {
        public long TimeNs { get; set; }

        public int Pid { get; set; }

        public string? ContainerId { get; set; }

        public uint Uid { get; set; }

        public string? Cwd { get; set; }

        public string? ProcessName { get; set; }
    }
}
