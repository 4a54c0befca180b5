using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Sandboxes;
using Sandstorm.Storage.Sandboxes;

namespace Sandstorm.Api.Sandboxes;

/// <summary>
/// A kept sandbox this process is serving: its record, its live session (wherever the sandbox is held) and its commands'
/// logs. Command rows are written in order by one background writer, so the command path never waits on storage.
/// </summary>
public sealed class LiveSandbox
{
    private readonly ConcurrentDictionary<string, CommandStream> _commands = new();
    private readonly Channel<SandboxCommandRecord> _writes = Channel.CreateUnbounded<SandboxCommandRecord>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;
    private int _sequence;

    public LiveSandbox(SandboxRecord record, ISandboxSession session, int commandsSoFar, SandboxStore store, ILogger logger)
    {
        Record = record;
        Session = session;
        _sequence = commandsSoFar;
        _writer = Task.Run(async () =>
        {
            await foreach (var row in _writes.Reader.ReadAllAsync())
            {
                try
                {
                    await store.UpsertCommandAsync(row, CancellationToken.None);
                }
                catch (Exception e)
                {
                    // The command ran; only its row for the sandbox's provenance is missing. Logged, never silently.
                    logger.LogError(e, "Could not record command {CommandId} of sandbox {SandboxId}", row.CommandId, row.SandboxId);
                }
            }
        });
    }

    public SandboxRecord Record { get; set; }

    public string TenantId => Record.TenantId;

    public string SandboxId => Record.SandboxId;

    public ISandboxSession Session { get; }

    /// <summary>Why the sandbox ended, once it has (for the commands it cut short).</summary>
    public string? EndReason { get; set; }

    public int CommandCount => Volatile.Read(ref _sequence);

    public IEnumerable<CommandStream> Commands => _commands.Values.OrderBy(c => c.Sequence);

    public int NextSequence() => Interlocked.Increment(ref _sequence);

    public void Add(CommandStream command) => _commands[command.CommandId] = command;

    public CommandStream? Command(string commandId) => _commands.GetValueOrDefault(commandId);

    public CommandStream? CommandByPid(int pid) => _commands.Values.FirstOrDefault(c => c.Pid == pid && !c.IsEnded);

    /// <summary>Queues a command's row (its start, then its end) for the writer.</summary>
    public void QueueRow(SandboxCommandRecord row) => _writes.Writer.TryWrite(row);

    /// <summary>Waits until every queued command row is written; no more are accepted after.</summary>
    public async Task CloseAsync()
    {
        _writes.Writer.TryComplete();
        await _writer;
    }

    /// <summary>Forgets ended commands beyond the newest <paramref name="keep"/>, so a long session's memory stays bounded.</summary>
    public void Trim(int keep)
    {
        foreach (var old in _commands.Values.Where(c => c.IsEnded).OrderByDescending(c => c.Sequence).Skip(keep))
        {
            _commands.TryRemove(old.CommandId, out _);
        }
    }
}
