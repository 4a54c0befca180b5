using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Shield;

namespace Sandstorm.Runtimes.Shield;

/// <summary>
/// Runs the monitor's bpftrace program (<see cref="BpftraceScript"/>) and turns its output into <see cref="ShieldEvent"/>s,
/// keyed by the execution cgroup they happened in.
/// </summary>
internal sealed class BpftraceSource : IAsyncDisposable
{
    // Marker calls (getpgid of these values) from the monitor itself: see DrainAsync.
    private const int MarkerBase = 0x7ff00000;

    private readonly Process process;
    private readonly Action<ulong, ShieldEvent> onEvent;
    private readonly Action<ulong, long, long> onForks;
    private readonly TimeProvider time;
    private readonly Dictionary<(int Pid, ulong Ts), PendingExec> pendingExecs = [];
    private readonly Dictionary<(int Pid, ulong Ts), (ulong Key, ShieldEvent Event)> pendingOpens = [];
    private readonly ConcurrentDictionary<int, ProcessInfo> processes = new();
    private readonly ConcurrentDictionary<int, Marker> markers = new();
    private readonly TaskCompletionSource attached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly StringBuilder errors = new();
    private readonly Task reader;
    private readonly Task errorReader;
    private readonly Lock drainGate = new();
    private long dropped;
    private int markerSequence;

    private BpftraceSource(Process process, string parentDirectory, Action<ulong, ShieldEvent> onEvent, Action<ulong, long, long> onForks, TimeProvider time)
    {
        this.process = process;
        ParentDirectory = parentDirectory;
        this.onEvent = onEvent;
        this.onForks = onForks;
        this.time = time;
        reader = Task.Factory.StartNew(ReadOutput, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        errorReader = Task.Run(ReadErrorsAsync);
    }

    /// <summary>The pids-hierarchy directory whose children are the traced executions.</summary>
    public string ParentDirectory { get; }

    public long Dropped => Interlocked.Read(ref dropped);

    /// <summary>Whether module syscalls (init_module, finit_module, delete_module) are traced.</summary>
    public bool ModuleSyscallsSeen { get; private set; }

    /// <summary>Raised once if bpftrace exits while the monitor still runs.</summary>
    public event Action<string>? Exited;

    public static async Task<(BpftraceSource? Source, string? Reason)> StartAsync(
        ShieldMonitorOptions options, Action<ulong, ShieldEvent> onEvent, Action<ulong, long, long> onForks, CancellationToken ct)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return (null, "not root: eBPF needs root here");
        }

        if (!File.Exists(options.BpftracePath))
        {
            return (null, $"bpftrace is not installed ({options.BpftracePath}; Debian package bpftrace)");
        }

        var events = Path.Combine(options.TracefsPath, "events");
        if (!Directory.Exists(events))
        {
            var (exit, output) = await RunAsync("/usr/bin/mount", ["-t", "tracefs", "nodev", options.TracefsPath], ct);
            if (exit != 0 || !Directory.Exists(events))
            {
                return (null, $"tracefs is not mounted at {options.TracefsPath} and mounting it failed: {output}");
            }
        }

        var pidsIndex = PidsSubsystemIndex();
        if (pidsIndex < 0)
        {
            return (null, "the cgroup v1 pids controller is not enabled (/proc/cgroups)");
        }

        var parent = Path.Combine(options.CgroupRoot, "pids", options.CgroupParent);
        try
        {
            Directory.CreateDirectory(parent);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (null, $"cannot create the sandboxes' pids cgroup {parent}: {e.Message}");
        }

        if (ShieldNative.InodeOf(parent) is not { } parentId)
        {
            return (null, $"cannot stat {parent}");
        }

        var level = options.CgroupParent.Split('/', StringSplitOptions.RemoveEmptyEntries).Length;
        var script = BpftraceScript.Build(pidsIndex, level, parentId, name => Directory.Exists(Path.Combine(events, "syscalls", name)), options.ForkInterval, options.RawModuleSyscalls)
            + $$"""

            tracepoint:syscalls:sys_enter_getpgid /pid == {{Environment.ProcessId}} && args->pid >= {{MarkerBase}}/
            {
              print((97, args->pid, cpu));
            }

            """;
        var path = Path.Combine(options.WorkRoot, "shield.bt");
        await File.WriteAllTextAsync(path, script, ct);

        // bpftrace dies with this process (its probes would otherwise stay attached): a parent-death signal, armed from the
        // spawner's long-lived thread since the signal follows the forking thread.
        var psi = new ProcessStartInfo("/usr/bin/setpriv")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var argument in (string[])["--pdeathsig", "KILL", "--", options.BpftracePath, "-f", "json", path])
        {
            psi.ArgumentList.Add(argument);
        }

        psi.Environment["BPFTRACE_STRLEN"] = BpftraceScript.StringLength.ToString(CultureInfo.InvariantCulture);
        psi.Environment["BPFTRACE_MAP_KEYS_MAX"] = "65536";
        psi.Environment["BPFTRACE_PERF_RB_PAGES"] = "256";
        var process = new Process { StartInfo = psi };
        await Internal.Spawner.StartAsync(process);
        process.StandardInput.Close();
        var source = new BpftraceSource(process, parent, onEvent, onForks, options.TimeProvider);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(options.StartTimeout);
        try
        {
            await source.attached.Task.WaitAsync(timeout.Token);
            source.ModuleSyscallsSeen = Directory.Exists(Path.Combine(events, "syscalls", "sys_exit_finit_module")) || options.RawModuleSyscalls;
            return (source, null);
        }
        catch (Exception e) when (e is OperationCanceledException or InvalidOperationException)
        {
            var why = source.ErrorText();
            await source.DisposeAsync();
            return (null, "bpftrace did not start: " + (string.IsNullOrWhiteSpace(why) ? e.Message : why));
        }
    }

    /// <summary>See <see cref="ShieldMonitor.DrainAsync"/>.</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        if (process.HasExited)
        {
            return;
        }

        var tag = MarkerBase + (Interlocked.Increment(ref markerSequence) & 0xfffff);
        var marker = new Marker();
        markers[tag] = marker;
        try
        {
            var thread = new Thread(() =>
            {
                // One marker from each CPU: each CPU's buffer is read in order, so its marker comes after its earlier events.
                var expected = 0;
                for (var cpu = 0; cpu < Environment.ProcessorCount; cpu++)
                {
                    if (ShieldNative.PinToCpu(cpu))
                    {
                        expected++;
                        ShieldNative.GetPgid(tag);
                    }
                }

                ShieldNative.Unpin();
                marker.Expect(expected);
            })
            { IsBackground = true, Name = "shield-drain" };
            thread.Start();
            await marker.Done.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
        }
        finally
        {
            markers.TryRemove(tag, out _);
        }
    }

    /// <summary>Drops what is remembered about an execution's processes once its watch ends.</summary>
    public void Forget(ulong cgroupId)
    {
        foreach (var (pid, info) in processes)
        {
            if (info.CgroupId == cgroupId)
            {
                processes.TryRemove(pid, out _);
            }
        }
    }

    private void ReadOutput()
    {
        try
        {
            string? line;
            while ((line = process.StandardOutput.ReadLine()) is not null)
            {
                try
                {
                    Handle(line);
                }
                catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or KeyNotFoundException or IndexOutOfRangeException)
                {
                    // One malformed line (an unexpected bpftrace message) must not stop monitoring.
                }
            }
        }
        finally
        {
            attached.TrySetException(new InvalidOperationException("bpftrace exited"));
            Exited?.Invoke(ErrorText());
        }
    }

    private async Task ReadErrorsAsync()
    {
        string? line;
        while ((line = await process.StandardError.ReadLineAsync()) is not null)
        {
            if (line.Contains("RLIMIT_MEMLOCK", StringComparison.Ordinal))
            {
                // bpftrace 0.17 warns on kernels that account BPF memory to the cgroup instead; harmless.
                continue;
            }

            if (line.StartsWith("Lost ", StringComparison.Ordinal) && long.TryParse(line.Split(' ')[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var lost))
            {
                Interlocked.Add(ref dropped, lost);
                continue;
            }

            lock (errors)
            {
                if (errors.Length < 4000)
                {
                    errors.AppendLine(line);
                }
            }
        }
    }

    private string ErrorText()
    {
        lock (errors)
        {
            return errors.ToString().Trim();
        }
    }

    private void Handle(string line)
    {
        using var document = JsonDocument.Parse(line);
        var root = document.RootElement;
        var type = root.GetProperty("type").GetString();
        var data = root.GetProperty("data");
        switch (type)
        {
            case "value" when data.ValueKind == JsonValueKind.Array:
                HandleTuple(data);
                break;
            case "printf":
                HandleText(data.GetString() ?? string.Empty);
                break;
            case "map":
                HandleForks(data);
                break;
            case "attached_probes":
                attached.TrySetResult();
                break;
            case "lost_events":
                Interlocked.Add(ref dropped, data.GetProperty("events").GetInt64());
                break;
        }
    }

    private void HandleForks(JsonElement data)
    {
        if (!data.TryGetProperty("@forks", out var forks) || forks.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        var now = Stopwatch.GetTimestamp();
        foreach (var entry in forks.EnumerateObject())
        {
            if (ulong.TryParse(entry.Name, NumberStyles.Integer, CultureInfo.InvariantCulture, out var key))
            {
                onForks(key, entry.Value.GetInt64(), now);
            }
        }
    }

    private void HandleTuple(JsonElement t)
    {
        var kind = t[0].GetInt32();
        if (kind == 97)
        {
            if (markers.TryGetValue(t[1].GetInt32(), out var marker))
            {
                marker.Seen();
            }

            return;
        }

        var key = t[1].GetUInt64();
        var ts = t[2].GetUInt64();
        var pid = t[3].GetInt32();
        var ppid = t[4].GetInt32();
        var uid = (int)t[5].GetInt64();
        var comm = t[6].GetString();
        var known = processes.TryGetValue(pid, out var info) || processes.TryGetValue(ppid, out info) ? info : null;
        var baseEvent = new ShieldEvent
        {
            Type = "unknown",
            Time = WallTime(ts),
            MonotonicTimestamp = (long)ts,
            Pid = pid,
            Ppid = ppid,
            Uid = uid,
            ProcessName = comm,
            ExePath = known?.Exe,
            CommandLine = known?.CommandLine ?? comm,
            Arguments = known?.Arguments,
            ParentName = processes.TryGetValue(ppid, out var parent) ? parent.Name : known?.ParentName,
        };
        switch (kind)
        {
            case 1:
                if (pendingExecs.Count > 10_000)
                {
                    pendingExecs.Clear();
                }

                pendingExecs[(pid, ts)] = new PendingExec(key, baseEvent with
                {
                    Type = "execve",
                    Direction = "<",
                    Result = "SUCCESS",
                    ParentName = t[7].GetString(),
                    StdinType = FdType(t[8].GetInt64(), t[9].GetInt64()),
                    StdoutType = FdType(t[10].GetInt64(), t[11].GetInt64()),
                });
                break;
            case 2 or 3:
            {
                var (address, port) = SocketAddress(t[7].GetInt64(), t[8].GetInt64(), t[9].GetUInt64(), t[10].GetUInt64(), t[11].GetUInt64());
                onEvent(key, baseEvent with
                {
                    Type = kind == 2 ? "connect" : "bind",
                    SocketAddress = address,
                    SocketPort = port,
                    FdName = (address.Contains(':', StringComparison.Ordinal) ? "[" + address + "]" : address) + ":" + port.ToString(CultureInfo.InvariantCulture),
                });
                break;
            }

            case 4:
                onEvent(key, baseEvent with { Type = "listen", Args = Args(("fd", t[7].GetInt64().ToString(CultureInfo.InvariantCulture))) });
                break;
            case 5:
                if (pendingOpens.Count > 10_000)
                {
                    // Path lines lost on the way (bpftrace counts them as lost events): their halves are dropped.
                    pendingOpens.Clear();
                }

                pendingOpens[(pid, ts)] = (key, baseEvent with
                {
                    Type = t[7].GetString()!,
                    Args = Args(("flags", t[8].GetInt64().ToString(CultureInfo.InvariantCulture))),
                });
                break;
            case 6:
            {
                var syscall = t[7].GetString()!;
                var ids = new[] { t[8].GetUInt64(), t[9].GetUInt64(), t[10].GetUInt64() }.Where(v => v != 0xffffffff).ToList();
                var target = ids.Count == 0 ? null : ids.Min().ToString(CultureInfo.InvariantCulture);
                var name = syscall.Contains("gid", StringComparison.Ordinal) ? "gid" : "uid";
                onEvent(key, baseEvent with { Type = syscall, Args = target is null ? null : Args((name, target)) });
                break;
            }

            case 7:
                onEvent(key, baseEvent with { Type = "capset" });
                break;
            case 8:
            {
                var syscall = t[7].GetString()!;
                var args = syscall switch
                {
                    "ptrace" => Args(("request", PtraceRequest(t[8].GetInt64())), ("pid", t[9].GetInt64().ToString(CultureInfo.InvariantCulture))),
                    "unshare" => Args(("flags", t[8].GetInt64().ToString(CultureInfo.InvariantCulture))),
                    _ => null,
                };
                onEvent(key, baseEvent with { Type = syscall, Args = args });
                break;
            }

            case 9:
                onEvent(key, baseEvent with { Type = t[7].GetString()!, Direction = "<", Result = Errno(t[8].GetInt64()) });
                break;
            case 10:
                onEvent(key, baseEvent with
                {
                    Type = BpftraceScript.ModuleSyscalls.GetValueOrDefault(t[7].GetInt64(), "module"),
                    Direction = "<",
                    Result = Errno(t[8].GetInt64()),
                });
                break;
        }
    }

    // "F pid ts path", "A pid ts head" and "T pid ts tail": the executable and arguments of the exec tuple printed just
    // before on the same CPU.
    private void HandleText(string text)
    {
        if (text.Length < 4 || text[1] != ' ' || text[0] is not ('A' or 'T' or 'F' or 'O'))
        {
            return;
        }

        var parts = text[..^(text.EndsWith('\n') ? 1 : 0)].Split(' ', 4);
        var pid = int.Parse(parts[1], CultureInfo.InvariantCulture);
        var ts = ulong.Parse(parts[2], CultureInfo.InvariantCulture);
        if (text[0] == 'O')
        {
            if (pendingOpens.Remove((pid, ts), out var open))
            {
                onEvent(open.Key, open.Event with { FdName = ResolvePath(pid, parts.Length > 3 ? parts[3] : string.Empty) });
            }

            return;
        }
        if (!pendingExecs.TryGetValue((pid, ts), out var pending))
        {
            return;
        }

        if (text[0] == 'F')
        {
            pending.Event = pending.Event with { ExePath = parts.Length > 3 ? parts[3] : null };
            return;
        }

        var bytes = Unescape(parts.Length > 3 ? parts[3] : string.Empty);
        if (text[0] == 'A')
        {
            pending.Head = bytes;
            if (bytes.Length >= BpftraceScript.StringLength)
            {
                // A tail line follows.
                return;
            }
        }
        else
        {
            pending.Tail = bytes;
        }

        pendingExecs.Remove((pid, ts));
        CompleteExec(pid, pending);
    }

    private void CompleteExec(int pid, PendingExec pending)
    {
        var argv = pending.Head;
        if (pending.Tail is not null)
        {
            // Longer than what the kernel copied: the whole of it from /proc if the process still runs this image,
            // else the head and the tail (what lies between is not seen).
            var full = ReadCmdline(pid);
            argv = full is not null && full.AsSpan().StartsWith(pending.Head) ? full : [.. pending.Head, .. "\0…\0"u8, .. pending.Tail];
        }

        var words = Encoding.UTF8.GetString(argv).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        var e = pending.Event;
        var arguments = string.Join(' ', words.Skip(1));
        var name = e.ProcessName ?? (words.Length > 0 ? Path.GetFileName(words[0]) : null);
        var commandLine = words.Length == 0 ? name : name + (arguments.Length > 0 ? " " + arguments : string.Empty);
        e = e with { CommandLine = commandLine, Arguments = arguments };
        processes[pid] = new ProcessInfo(pending.CgroupId, name, e.ExePath, commandLine, arguments, e.ParentName);
        if (processes.Count > 20_000)
        {
            // Sandboxes nobody watched (no policy) are never forgotten by a watch: drop the processes that are gone.
            foreach (var known in processes.Keys.Where(p => !Directory.Exists($"/proc/{p}")).ToList())
            {
                processes.TryRemove(known, out _);
            }
        }

        onEvent(pending.CgroupId, e);
    }

    // As Falco does, fd.name is the absolute, normalised path: "../etc/shadow" from /scratch is /etc/shadow. A relative
    // path is resolved against the process's working directory while it still runs (else it stays relative).
    internal static string ResolvePath(int pid, string path)
    {
        if (path.StartsWith('/'))
        {
            return UnixPath.Combine("/", path);
        }

        string? cwd = null;
        try
        {
            cwd = new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return cwd is not null && cwd.StartsWith('/') ? UnixPath.Combine(cwd, path) : path;
    }

    private static byte[]? ReadCmdline(int pid)
    {
        try
        {
            return File.ReadAllBytes($"/proc/{pid}/cmdline");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    // bpftrace's %r: printable bytes as they are, others as \xNN.
    private static byte[] Unescape(string text)
    {
        var bytes = new List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 3 < text.Length && text[i + 1] == 'x'
                && byte.TryParse(text.AsSpan(i + 2, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(text[i].ToString()));
            }
        }

        return [.. bytes];
    }

    private DateTimeOffset WallTime(ulong monotonicNs)
    {
        var ago = Stopwatch.GetTimestamp() - (long)monotonicNs;
        return time.GetUtcNow() - TimeSpan.FromTicks(Math.Max(0, ago) * TimeSpan.TicksPerSecond / Stopwatch.Frequency);
    }

    // Falco's fd type names for the descriptor's inode mode (and socket family).
    private static string? FdType(long mode, long family) => (mode & 0xF000) switch
    {
        0 => null,
        0xC000 => family switch { 2 => "ipv4", 10 => "ipv6", 1 => "unix", 16 => "netlink", _ => "socket" },
        0x1000 => "pipe",
        0x8000 => "file",
        0x4000 => "directory",
        0x2000 => "char",
        _ => "other",
    };

    internal static (string Address, int Port) SocketAddress(long family, long rawPort, ulong ipv4, ulong ipv6High, ulong ipv6Low)
    {
        var port = (int)(((rawPort & 0xff) << 8) | ((rawPort >> 8) & 0xff));
        if (family == 2)
        {
            return (new IPAddress((long)(ipv4 & 0xffffffff)).ToString(), port);
        }

        // sin6_flowinfo sits at offset 4; the address is the 16 bytes at offset 8, read as two little-endian words.
        var bytes = new byte[16];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), ipv6High);
        BitConverter.TryWriteBytes(bytes.AsSpan(8, 8), ipv6Low);
        return (new IPAddress(bytes).ToString(), port);
    }

    internal static string PtraceRequest(long request) => request switch
    {
        0 => "PTRACE_TRACEME",
        1 => "PTRACE_PEEKTEXT",
        2 => "PTRACE_PEEKDATA",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        0x4206 => "PTRACE_SEIZE",
        _ => request.ToString(CultureInfo.InvariantCulture),
    };

    internal static string Errno(long ret) => ret switch
    {
        >= 0 => "SUCCESS",
        -1 => "EPERM",
        -2 => "ENOENT",
        -3 => "ESRCH",
        -13 => "EACCES",
        -22 => "EINVAL",
        -38 => "ENOSYS",
        _ => "E" + (-ret).ToString(CultureInfo.InvariantCulture),
    };

    private static Dictionary<string, string> Args(params (string Name, string Value)[] args) => args.ToDictionary(a => a.Name, a => a.Value, StringComparer.Ordinal);

    // /proc/cgroups lists the controllers in the kernel's subsystem order, which is the index into css_set->subsys.
    private static int PidsSubsystemIndex()
    {
        var index = 0;
        foreach (var line in File.ReadLines("/proc/cgroups"))
        {
            if (line.StartsWith('#'))
            {
                continue;
            }

            if (line.Split('\t')[0] == "pids")
            {
                return index;
            }

            index++;
        }

        return -1;
    }

    private static async Task<(int, string)> RunAsync(string file, string[] arguments, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        using var process = Process.Start(psi)!;
        var output = await process.StandardError.ReadToEndAsync(ct) + await process.StandardOutput.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        return (process.ExitCode, output.Trim());
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
        catch (InvalidOperationException)
        {
        }

        await process.WaitForExitAsync();
        await Task.WhenAll(reader, errorReader).WaitAsync(TimeSpan.FromSeconds(5)).ContinueWith(_ => { }, TaskScheduler.Default);
        process.Dispose();
    }

    private sealed class PendingExec(ulong cgroupId, ShieldEvent e)
    {
        public ulong CgroupId { get; } = cgroupId;

        public ShieldEvent Event { get; set; } = e;

        public byte[] Head { get; set; } = [];

        public byte[]? Tail { get; set; }
    }

    private sealed record ProcessInfo(ulong CgroupId, string? Name, string? Exe, string? CommandLine, string? Arguments, string? ParentName);

    private sealed class Marker
    {
        private int seen;
        private int expected = -1;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Seen()
        {
            lock (this)
            {
                seen++;
                Check();
            }
        }

        public void Expect(int count)
        {
            lock (this)
            {
                expected = count;
                Check();
            }
        }

        private void Check()
        {
            if (expected >= 0 && seen >= expected)
            {
                Done.TrySetResult();
            }
        }
    }
}
