using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Sandboxes;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// A sandbox that lives across many commands (an agent's session): one set of namespaces, one seccomp filter, one
/// cgroup, one writable home (<c>/home/user</c>) and <c>/tmp</c>. Its first process is a small init (Python, inside the
/// sandbox, as its user) that starts each command, relays its output as it comes, and does the file operations on the
/// inside, so a path resolves in the sandbox's own view and can never reach the host. Everything it started shares the
/// sandbox's limits; disposing the sandbox kills all of it and removes what it left on the host.
/// </summary>
public sealed class KeptSandbox : ISandboxSession, IAsyncDisposable
{
    /// <summary>The sandbox's user, its home and working directory (E2B's conventions).</summary>
    public const string User = "user";

    public const string Home = "/home/user";

    private const byte Exec = 1, Input = 2, CloseStdin = 3, Signal = 4, KillAll = 5, Ping = 6, Fs = 10, FsDataIn = 11, FsEndIn = 12;
    private const byte Ready = 64, Started = 65, Pong = 66, Stdout = 67, Stderr = 68, Exit = 69, Error = 70, FsOk = 80, FsData = 81, FsEnd = 82;
    private const int HeaderSize = 9;
    private const int ChunkSize = 64 * 1024;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly Process _init;
    private readonly Func<Task> _destroy;
    private readonly KeptShield _shield;
    private readonly Stream _toInit;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<uint, KeptProcess> _processes = new();
    private readonly ConcurrentDictionary<uint, Request> _requests = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Func<(long CpuMs, long PeakMemoryBytes)> _usage;
    private readonly Action<KeptSandboxSpec> _applyLimits;
    private int _nextId;
    private int _disposed;

    internal KeptSandbox(string id, string runtime, KeptSandboxSpec spec, KeptShield shield, Process init, Func<(long, long)> usage, Action<KeptSandboxSpec> applyLimits, Func<Task> destroy)
    {
        _shield = shield;
        Id = id;
        Runtime = runtime;
        Spec = spec;
        _init = init;
        _usage = usage;
        _applyLimits = applyLimits;
        _destroy = destroy;
        _toInit = init.StandardInput.BaseStream;
        _ = Task.Run(ReadLoopAsync);
    }

    /// <summary>Host-side id of the sandbox (its cgroup, scratch and runtime state are named after it).</summary>
    public string Id { get; }

    /// <summary>Runtime it runs under (bwrap, gvisor, ...).</summary>
    public string Runtime { get; }

    /// <summary>The limits it runs under now.</summary>
    public KeptSandboxSpec Spec { get; private set; }

    /// <summary>
    /// Sets the sandbox's cgroup limits (memory, processes, CPU) to <paramref name="spec"/>'s, e.g. when a warm sandbox is
    /// claimed. Its disk size was fixed at its start.
    /// </summary>
    public void ApplyLimits(KeptSandboxSpec spec)
    {
        _applyLimits(spec);
        Spec = spec with { DiskMiB = Spec.DiskMiB };
    }

    /// <summary>
    /// Completes with the finding once Shield quarantined the sandbox — its monitor (a finding at or above the policy's
    /// threshold) or an outside alert (Falco) — having killed every process in it (the sandbox then ends). Never completes
    /// for a sandbox Shield left alone.
    /// </summary>
    public Task<ShieldFinding> Quarantined => _shield.Quarantined;

    /// <summary>Shield's findings so far (the monitor's and outside alerts'), in the order made.</summary>
    public IReadOnlyList<ShieldFinding> ShieldFindings => _shield.Report().Findings;

    /// <summary>What Shield has seen of the sandbox so far: coverage (and why not full), time watched, findings, quarantine.</summary>
    public ShieldReport ShieldReport() => _shield.Report();

    /// <summary>
    /// Starts Shield's watch of a sandbox that was started without a policy (a warm one, as it is claimed); false when it is
    /// already watched. Commands started from now on are seen.
    /// </summary>
    public bool WatchWithShield(Shield.ShieldPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return _shield.Start(policy);
    }

    /// <summary>Ties a claimed warm sandbox to its tenant, for matching Falco alerts that name it.</summary>
    internal void AssignTenant(string tenantId) => _shield.Running.TenantId = tenantId;

    /// <summary>Completes when the sandbox has ended, whether destroyed or died (its init exited).</summary>
    public Task Ended => _ended.Task;

    /// <summary>True while its init answers: commands and file operations can reach it.</summary>
    public bool IsAlive => !_ended.Task.IsCompleted;

    /// <summary>Processes started and not yet ended.</summary>
    public IReadOnlyCollection<ISandboxProcess> Processes => [.. _processes.Values.Where(p => !p.Exited.IsCompleted)];

    /// <summary>CPU time used and peak memory of everything in the sandbox so far.</summary>
    public (long CpuMs, long PeakMemoryBytes) Usage() => _usage();

    internal Task WaitReadyAsync(TimeSpan timeout) => _ready.Task.WaitAsync(timeout);

    /// <summary>Starts a command; returns once it runs (its pid known). Output goes to <paramref name="sink"/> as it comes.</summary>
    public async Task<ISandboxProcess> StartProcessAsync(ProcessSpec spec, IProcessSink sink, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var id = NextId();
        var process = new KeptProcess(this, id, spec, sink);
        _processes[id] = process;
        try
        {
            await SendJsonAsync(Exec, id, new { argv = spec.Arguments, cwd = spec.WorkingDirectory, env = spec.Environment, stdin = spec.Stdin }, ct);
            await process.StartedTask.WaitAsync(ct);
            return process;
        }
        catch
        {
            _processes.TryRemove(id, out _);
            throw;
        }
    }

    /// <summary>The running process with this pid (inside the sandbox), or null.</summary>
    public ISandboxProcess? FindProcess(int pid) => _processes.Values.FirstOrDefault(p => p.Pid == pid && !p.Exited.IsCompleted);

    /// <summary>The entry at <paramref name="path"/> (not following a final symlink).</summary>
    public Task<SandboxFileInfo> StatAsync(string path, CancellationToken ct) => FileOpAsync<SandboxFileInfo>(new { op = "stat", path }, ct);

    /// <summary>Entries under a directory, up to <paramref name="depth"/> levels down (1: its own entries), in pre-order.</summary>
    public async Task<IReadOnlyList<SandboxFileInfo>> ListAsync(string path, int depth, CancellationToken ct) =>
        (await FileOpAsync<DirectoryListing>(new { op = "list", path, depth }, ct)).Entries;

    /// <summary>Creates a directory (and its parents); fails with <c>exists</c> when it is already there.</summary>
    public Task<SandboxFileInfo> MakeDirectoryAsync(string path, CancellationToken ct) => FileOpAsync<SandboxFileInfo>(new { op = "mkdir", path }, ct);

    /// <summary>Moves (renames) an entry; the destination's parents are created.</summary>
    public Task<SandboxFileInfo> MoveAsync(string path, string destination, CancellationToken ct) =>
        FileOpAsync<SandboxFileInfo>(new { op = "move", path, destination }, ct);

    /// <summary>Removes a file, a symlink or (recursively) a directory.</summary>
    public Task RemoveAsync(string path, CancellationToken ct) => FileOpAsync<JsonElement>(new { op = "remove", path }, ct);

    /// <summary>
    /// Writes a file from <paramref name="content"/> (parents created); at most <paramref name="limit"/> bytes. The file
    /// appears whole or not at all: a refused or failed upload leaves what was there before.
    /// </summary>
    public async Task<SandboxFileInfo> WriteFileAsync(string path, Stream content, long limit, CancellationToken ct)
    {
        var id = NextId();
        var request = new Request();
        _requests[id] = request;
        try
        {
            await SendJsonAsync(Fs, id, new { op = "write", path, limit }, ct);
            var buffer = new byte[ChunkSize];
            int read;
            while (!request.Done.IsCompleted && (read = await content.ReadAsync(buffer, ct)) > 0)
            {
                await SendAsync(FsDataIn, id, buffer.AsMemory(0, read), ct);
            }

            await SendAsync(FsEndIn, id, ReadOnlyMemory<byte>.Empty, ct);
            return Deserialize<SandboxFileInfo>(await request.Done.WaitAsync(ct));
        }
        finally
        {
            _requests.TryRemove(id, out _);
        }
    }

    /// <summary>
    /// Reads a file of at most <paramref name="limit"/> bytes: <paramref name="open"/> gets its entry (size known) and
    /// returns where the bytes go; they are copied there as they come.
    /// </summary>
    public async Task<SandboxFileInfo> ReadFileAsync(string path, long limit, Func<SandboxFileInfo, Stream> open, CancellationToken ct)
    {
        var id = NextId();
        var request = new Request { Data = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true }) };
        _requests[id] = request;
        try
        {
            await SendJsonAsync(Fs, id, new { op = "read", path, limit }, ct);
            var entry = Deserialize<SandboxFileInfo>(await request.Done.WaitAsync(ct));
            var destination = open(entry);
            await foreach (var chunk in request.Data.Reader.ReadAllAsync(ct))
            {
                await destination.WriteAsync(chunk, ct);
            }

            return entry;
        }
        finally
        {
            _requests.TryRemove(id, out _);
        }
    }

    /// <summary>How many processes run in the sandbox besides its init, as the sandbox itself counts them.</summary>
    public async Task<int> CountProcessesAsync(CancellationToken ct) => await ControlAsync(Ping, ct);

    /// <summary>Kills every process in the sandbox but its init (commands, their children, what they left behind).</summary>
    public async Task KillAllAsync(CancellationToken ct) => await ControlAsync(KillAll, ct);

    /// <summary>True when the init answers within <paramref name="timeout"/>.</summary>
    public async Task<bool> PingAsync(TimeSpan timeout)
    {
        try
        {
            await ControlAsync(Ping, CancellationToken.None).WaitAsync(timeout);
            return true;
        }
        catch (Exception e) when (e is TimeoutException or SandboxException)
        {
            return false;
        }
    }

    private async Task<int> ControlAsync(byte kind, CancellationToken ct)
    {
        var id = NextId();
        var request = new Request();
        _requests[id] = request;
        try
        {
            await SendAsync(kind, id, ReadOnlyMemory<byte>.Empty, ct);
            return (await request.Done.WaitAsync(ct)).GetProperty("processes").GetInt32();
        }
        finally
        {
            _requests.TryRemove(id, out _);
        }
    }

    /// <summary>Kills everything in the sandbox and removes what it left on the host. Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            await _ended.Task;
            return;
        }

        try
        {
            await _destroy();
        }
        finally
        {
            // After the processes are gone: the watch judges the last events, then closes; the id is released.
            await _shield.DisposeAsync();
            try
            {
                _init.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }

            _init.Dispose();
            End("the sandbox was destroyed");
        }
    }

    internal Task SendSignalAsync(uint id, int signal) => SendJsonAsync(Signal, id, new { signal }, CancellationToken.None);

    internal Task SendInputAsync(uint id, ReadOnlyMemory<byte> data, CancellationToken ct) => SendChunkedAsync(Input, id, data, ct);

    internal Task SendCloseStdinAsync(uint id) => SendAsync(CloseStdin, id, ReadOnlyMemory<byte>.Empty, CancellationToken.None);

    private async Task<T> FileOpAsync<T>(object operation, CancellationToken ct)
    {
        var id = NextId();
        var request = new Request();
        _requests[id] = request;
        try
        {
            await SendJsonAsync(Fs, id, operation, ct);
            return Deserialize<T>(await request.Done.WaitAsync(ct));
        }
        finally
        {
            _requests.TryRemove(id, out _);
        }
    }

    private uint NextId() => (uint)Interlocked.Increment(ref _nextId);

    private Task SendJsonAsync(byte kind, uint id, object value, CancellationToken ct) =>
        SendAsync(kind, id, JsonSerializer.SerializeToUtf8Bytes(value, Json), ct);

    private async Task SendChunkedAsync(byte kind, uint id, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        for (var offset = 0; offset < data.Length; offset += ChunkSize)
        {
            await SendAsync(kind, id, data.Slice(offset, Math.Min(ChunkSize, data.Length - offset)), ct);
        }
    }

    private async Task SendAsync(byte kind, uint id, ReadOnlyMemory<byte> payload, CancellationToken ct)
    {
        if (!IsAlive)
        {
            throw Gone();
        }

        var header = new byte[HeaderSize];
        header[0] = kind;
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(1), id);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(5), (uint)payload.Length);
        await _writeLock.WaitAsync(ct);
        try
        {
            await _toInit.WriteAsync(header, CancellationToken.None);
            if (!payload.IsEmpty)
            {
                await _toInit.WriteAsync(payload, CancellationToken.None);
            }

            await _toInit.FlushAsync(CancellationToken.None);
        }
        catch (IOException)
        {
            throw Gone();
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        var from = _init.StandardOutput.BaseStream;
        var buffer = new byte[256 * 1024];
        var filled = 0;
        try
        {
            while (true)
            {
                if (filled == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

                var read = await from.ReadAsync(buffer.AsMemory(filled));
                if (read == 0)
                {
                    break;
                }

                filled += read;
                var start = 0;
                while (filled - start >= HeaderSize)
                {
                    var length = (int)BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(start + 5));
                    if (filled - start < HeaderSize + length)
                    {
                        if (HeaderSize + length > buffer.Length)
                        {
                            Array.Resize(ref buffer, HeaderSize + length);
                        }

                        break;
                    }

                    Dispatch(buffer[start], BinaryPrimitives.ReadUInt32BigEndian(buffer.AsSpan(start + 1)), buffer.AsSpan(start + HeaderSize, length));
                    start += HeaderSize + length;
                }

                Buffer.BlockCopy(buffer, start, buffer, 0, filled - start);
                filled -= start;
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
        }

        End("the sandbox ended: its init is gone");
    }

    private void Dispatch(byte kind, uint id, ReadOnlySpan<byte> payload)
    {
        switch (kind)
        {
            case Ready:
                _ready.TrySetResult();
                break;
            case Started when _processes.TryGetValue(id, out var p):
                var pid = JsonSerializer.Deserialize<StartedMessage>(payload, Json)!.Pid;
                p.Sink.OnStarted(pid);
                p.OnStarted(pid);
                break;
            case Stdout when _processes.TryGetValue(id, out var p):
                p.Sink.OnOutput(ProcessStream.Stdout, payload);
                break;
            case Stderr when _processes.TryGetValue(id, out var p):
                p.Sink.OnOutput(ProcessStream.Stderr, payload);
                break;
            case Exit when _processes.TryRemove(id, out var p):
                var exit = JsonSerializer.Deserialize<ExitMessage>(payload, Json)!;
                p.OnExit(new ProcessExit(exit.Code, exit.Signal));
                break;
            case Error when _processes.TryRemove(id, out var p):
                p.OnFailed(Failure(payload));
                break;
            case Error when _requests.TryGetValue(id, out var r):
                r.Fail(Failure(payload));
                break;
            case Pong when _requests.TryGetValue(id, out var r):
                r.Complete(JsonSerializer.Deserialize<JsonElement>(payload));
                break;
            case FsOk when _requests.TryGetValue(id, out var r):
                // For a read, the entry comes first, then its bytes, then the end.
                r.Complete(JsonSerializer.Deserialize<JsonElement>(payload));
                break;
            case FsData when _requests.TryGetValue(id, out var r):
                r.Data?.Writer.TryWrite(payload.ToArray());
                break;
            case FsEnd when _requests.TryGetValue(id, out var r):
                r.Data?.Writer.TryComplete();
                break;
        }
    }

    private void End(string reason)
    {
        if (!_ended.TrySetResult())
        {
            return;
        }

        _ready.TrySetException(new SandboxException(SandboxErrors.Gone, reason));
        foreach (var process in _processes.Values)
        {
            process.OnSandboxEnded();
        }

        foreach (var request in _requests.Values)
        {
            request.Fail(new SandboxException(SandboxErrors.Gone, reason));
        }
    }

    private static SandboxException Gone() => new(SandboxErrors.Gone, "the sandbox has ended");

    private static SandboxException Failure(ReadOnlySpan<byte> payload)
    {
        var error = JsonSerializer.Deserialize<ErrorMessage>(payload, Json)!;
        return new SandboxException(error.Code ?? SandboxErrors.Io, error.Message ?? "the sandbox refused the operation");
    }

    private static T Deserialize<T>(JsonElement element) => element.Deserialize<T>(Json)!;

    private sealed record StartedMessage(int Pid);

    private sealed record ExitMessage(int? Code, int? Signal);

    private sealed record ErrorMessage(string? Code, string? Message);

    private sealed record DirectoryListing(IReadOnlyList<SandboxFileInfo> Entries, bool Truncated);

    /// <summary>One operation in flight: its answer, and for a read the bytes that follow it.</summary>
    private sealed class Request
    {
        private readonly TaskCompletionSource<JsonElement> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<JsonElement> Done => _done.Task;

        public Channel<byte[]>? Data { get; init; }

        public void Complete(JsonElement value) => _done.TrySetResult(value);

        public void Fail(Exception e)
        {
            _done.TrySetException(e);
            Data?.Writer.TryComplete(e);
        }
    }
}

/// <summary>A command started in a <see cref="KeptSandbox"/>.</summary>
public sealed class KeptProcess : ISandboxProcess
{
    private readonly KeptSandbox _sandbox;
    private readonly uint _id;
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<ProcessExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal KeptProcess(KeptSandbox sandbox, uint id, ProcessSpec spec, IProcessSink sink)
    {
        _sandbox = sandbox;
        _id = id;
        Spec = spec;
        Sink = sink;
    }

    /// <summary>Its pid inside the sandbox.</summary>
    public int Pid { get; private set; }

    public ProcessSpec Spec { get; }

    /// <summary>Completes when it has ended and all its output was delivered to the sink.</summary>
    public Task<ProcessExit> Exited => _exited.Task;

    internal IProcessSink Sink { get; }

    internal Task StartedTask => _started.Task;

    /// <summary>Writes to its stdin (when it was started with one).</summary>
    public Task SendInputAsync(ReadOnlyMemory<byte> data, CancellationToken ct) => _sandbox.SendInputAsync(_id, data, ct);

    /// <summary>Closes its stdin once what was sent has been written: it reads end of file.</summary>
    public Task CloseInputAsync() => _sandbox.SendCloseStdinAsync(_id);

    /// <summary>Sends a signal to it and its process group (SIGKILL by default).</summary>
    public Task SignalAsync(int signal = 9) => _sandbox.SendSignalAsync(_id, signal);

    internal void OnStarted(int pid)
    {
        Pid = pid;
        _started.TrySetResult();
    }

    internal void OnExit(ProcessExit exit)
    {
        _started.TrySetResult();
        _exited.TrySetResult(exit);
    }

    internal void OnFailed(SandboxException e)
    {
        _started.TrySetException(e);
        _exited.TrySetException(e);
    }

    internal void OnSandboxEnded()
    {
        var gone = new SandboxException(SandboxErrors.Gone, "the sandbox ended while the command ran");
        _started.TrySetException(gone);
        _exited.TrySetResult(new ProcessExit(null, 9) { SandboxEnded = true });
    }
}

