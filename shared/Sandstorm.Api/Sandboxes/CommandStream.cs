using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Sandboxes;

namespace Sandstorm.Api.Sandboxes;

/// <summary>What happened in a command, in order: it started, it printed, it ended (or readers fell behind: a gap).</summary>
public enum CommandEventKind
{
    Start,
    Stdout,
    Stderr,
    End,

    /// <summary>Events a reader asked for were dropped to bound memory (the log keeps the newest output of a command).</summary>
    Gap,
}

/// <summary>One event of a command's log; ids start at 1 and never repeat.</summary>
public sealed record CommandEvent(long Id, CommandEventKind Kind, ReadOnlyMemory<byte> Data = default);

/// <summary>
/// The one log of a running command, whatever surface reads it: its output as it came (split at UTF-8 character
/// boundaries, so every event decodes on its own), its start and its end. Several readers may follow it at once (the
/// caller's stream, a reconnect with <c>Last-Event-ID</c>, E2B's <c>Connect</c>), each from the event it asks for;
/// nothing is sent twice. The newest <see cref="RetainedBytes"/> of output are kept; a reader asking for older events is
/// told with a <see cref="CommandEventKind.Gap"/>. The log also digests everything printed, for the sandbox's provenance.
/// </summary>
public sealed class CommandStream : IProcessSink
{
    /// <summary>Output kept per command for late readers.</summary>
    public const long RetainedBytes = 16L * 1024 * 1024;

    private readonly Lock _lock = new();
    private readonly List<CommandEvent> _events = [];
    private readonly IncrementalHash _stdoutHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly IncrementalHash _stderrHash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly byte[][] _pending = [[], []];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _nextId = 1;
    private long _retained;
    private long _dropped;

    public CommandStream(string commandId, string sandboxId, int sequence, CommandRequest request, DateTimeOffset startedAt)
    {
        CommandId = commandId;
        SandboxId = sandboxId;
        Sequence = sequence;
        Request = request;
        StartedAt = startedAt;
    }

    public string CommandId { get; }

    public string SandboxId { get; }

    public int Sequence { get; }

    public CommandRequest Request { get; }

    public DateTimeOffset StartedAt { get; }

    /// <summary>The process, once started.</summary>
    public ISandboxProcess? Process { get; private set; }

    public int Pid => Process?.Pid ?? StartedPid;

    /// <summary>How it ended, once it has.</summary>
    public CommandEnd? End { get; private set; }

    public long StdoutBytes { get; private set; }

    public long StderrBytes { get; private set; }

    public bool IsEnded => End is not null;

    /// <summary>Set when the caller asked to kill it, so its end reads "killed on request".</summary>
    public bool KilledOnRequest { get; set; }

    public void OnOutput(ProcessStream stream, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            var index = stream == ProcessStream.Stdout ? 0 : 1;
            (index == 0 ? _stdoutHash : _stderrHash).AppendData(data);
            if (index == 0)
            {
                StdoutBytes += data.Length;
            }
            else
            {
                StderrBytes += data.Length;
            }

            // Carry an incomplete UTF-8 sequence at the end into the next chunk of the same stream.
            var pending = _pending[index];
            var joined = pending.Length == 0 ? data.ToArray() : [.. pending, .. data];
            var cut = Utf8Boundary(joined);
            _pending[index] = joined[cut..];
            if (cut > 0)
            {
                Append(index == 0 ? CommandEventKind.Stdout : CommandEventKind.Stderr, joined.AsMemory(0, cut));
            }
        }
    }

    /// <summary>The process's pid, as the sandbox numbers it; 0 until it started.</summary>
    public int StartedPid { get; private set; }

    /// <summary>Records the start, before any output.</summary>
    public void OnStarted(int pid)
    {
        lock (_lock)
        {
            StartedPid = pid;
            Append(CommandEventKind.Start, default);
        }
    }

    /// <summary>Keeps the started process (for input, signals and its exit).</summary>
    public void Attach(ISandboxProcess process) => Process = process;

    /// <summary>Records the end; the first end recorded wins (a kill racing an exit).</summary>
    public void Ended(CommandEnd end)
    {
        lock (_lock)
        {
            if (End is not null)
            {
                return;
            }

            for (var index = 0; index < 2; index++)
            {
                if (_pending[index].Length > 0)
                {
                    Append(index == 0 ? CommandEventKind.Stdout : CommandEventKind.Stderr, _pending[index]);
                    _pending[index] = [];
                }
            }

            End = end;
            Append(CommandEventKind.End, default);
        }
    }

    /// <summary>SHA-256 of everything printed on each stream (lowercase hex).</summary>
    public (string Stdout, string Stderr) Digests()
    {
        lock (_lock)
        {
            return (Convert.ToHexStringLower(_stdoutHash.GetCurrentHash()), Convert.ToHexStringLower(_stderrHash.GetCurrentHash()));
        }
    }

    /// <summary>
    /// Events after <paramref name="afterId"/>, then each new one as it comes, until the end event (or cancellation).
    /// A reader whose next event was dropped gets one <see cref="CommandEventKind.Gap"/> first.
    /// </summary>
    public async IAsyncEnumerable<CommandEvent> ReadAsync(long afterId, [EnumeratorCancellation] CancellationToken ct)
    {
        var cursor = afterId;
        while (true)
        {
            List<CommandEvent> batch;
            Task changed;
            lock (_lock)
            {
                batch = [];
                if (cursor < _dropped)
                {
                    batch.Add(new CommandEvent(_dropped, CommandEventKind.Gap));
                    cursor = _dropped;
                }

                var first = _events.Count == 0 ? 0 : _events[0].Id;
                for (var i = (int)Math.Max(0, cursor + 1 - first); i < _events.Count; i++)
                {
                    batch.Add(_events[i]);
                }

                changed = _changed.Task;
            }

            foreach (var e in batch)
            {
                yield return e;
                cursor = e.Id;
                if (e.Kind == CommandEventKind.End)
                {
                    yield break;
                }
            }

            await changed.WaitAsync(ct);
        }
    }

    /// <summary>The command as the API shows it.</summary>
    public CommandInfo ToInfo() => new()
    {
        Id = CommandId,
        SandboxId = SandboxId,
        Pid = Pid,
        Cmd = Request.Cmd,
        Status = End?.Status ?? "running",
        ExitCode = End?.ExitCode,
        Signal = End?.Signal,
        StartedAt = StartedAt,
        EndedAt = End?.At,
        Error = End?.Error,
    };

    // Holds _lock.
    private void Append(CommandEventKind kind, ReadOnlyMemory<byte> data)
    {
        _events.Add(new CommandEvent(_nextId++, kind, data));
        _retained += data.Length;
        while (_retained > RetainedBytes && _events.Count > 1 && _events[0].Kind is CommandEventKind.Stdout or CommandEventKind.Stderr)
        {
            _retained -= _events[0].Data.Length;
            _dropped = _events[0].Id;
            _events.RemoveAt(0);
        }

        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }

    // Length of the longest prefix that does not end inside a UTF-8 sequence (bytes that can never complete one pass).
    private static int Utf8Boundary(byte[] bytes)
    {
        var end = bytes.Length;
        for (var back = 1; back <= Math.Min(3, end); back++)
        {
            var b = bytes[end - back];
            if ((b & 0xC0) == 0x80)
            {
                continue; // a continuation byte: look further back for the lead
            }

            var needed = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
            return needed > back ? end - back : end;
        }

        return end;
    }
}

/// <summary>How a command ended: <c>exited</c> (with its code), <c>killed</c>, <c>timed_out</c> or <c>sandbox_ended</c>.</summary>
public sealed record CommandEnd(string Status, int? ExitCode, int? Signal, string? Error, DateTimeOffset At);
