namespace Sandstorm.Client;

/// <summary>Kind of a <see cref="CommandEvent"/>, as the event stream names it.</summary>
public enum CommandEventKind
{
    Start,
    Stdout,
    Stderr,
    End,

    /// <summary>Older output of the command is no longer kept; what follows is still in order.</summary>
    Gap,
}

/// <summary>One event of a command's Server-Sent Events stream.</summary>
public class CommandEvent
{
    protected internal CommandEvent(long id, CommandEventKind kind)
    {
        Id = id;
        Kind = kind;
    }

    /// <summary>The event id (resume after it with <c>Last-Event-ID</c>).</summary>
    public long Id { get; }

    public CommandEventKind Kind { get; }

    /// <summary><see cref="CommandEventKind.Start"/>: the command's id.</summary>
    public string? CommandId { get; init; }

    /// <summary><see cref="CommandEventKind.Start"/>: its pid inside the sandbox.</summary>
    public int? Pid { get; init; }

    /// <summary><see cref="CommandEventKind.Stdout"/> or <see cref="CommandEventKind.Stderr"/>: the text that came.</summary>
    public string? Data { get; init; }

    /// <summary><see cref="CommandEventKind.End"/>: <c>exited</c>, <c>killed</c>, <c>timed_out</c>, <c>sandbox_ended</c>.</summary>
    public string? Status { get; init; }

    public int? ExitCode { get; init; }

    public int? Signal { get; init; }

    public string? Error { get; init; }

    public long? DurationMs { get; init; }
}

/// <summary>A command that has ended, with everything it printed.</summary>
public class CommandResult
{
    protected internal CommandResult(string commandId, string status, int? exitCode, string stdout, string stderr, string? error)
    {
        CommandId = commandId;
        Status = status;
        ExitCode = exitCode;
        Stdout = stdout;
        Stderr = stderr;
        Error = error;
    }

    public string CommandId { get; }

    public string Status { get; }

    public int? ExitCode { get; }

    public string Stdout { get; }

    public string Stderr { get; }

    public string? Error { get; }
}

/// <summary>An entry of a sandbox directory.</summary>
public class SandboxFileEntry
{
    protected internal SandboxFileEntry(string name, string type, string path, long size)
    {
        Name = name;
        Type = type;
        Path = path;
        Size = size;
    }

    public string Name { get; }

    /// <summary><c>file</c>, <c>dir</c> or <c>symlink</c>.</summary>
    public string Type { get; }

    public string Path { get; }

    public long Size { get; }

    public DateTimeOffset? ModifiedAt { get; init; }
}

/// <summary>A batch as <c>GET /v1/batches/{id}</c> shows it.</summary>
public class BatchInfo
{
    protected internal BatchInfo(string id, string status, int total, int succeeded, int failed, int cancelled, decimal cost)
    {
        Id = id;
        Status = status;
        Total = total;
        Succeeded = succeeded;
        Failed = failed;
        Cancelled = cancelled;
        Cost = cost;
    }

    public string Id { get; }

    /// <summary><c>queued</c>, <c>running</c>, <c>completed</c>, <c>cancelling</c>, <c>cancelled</c>.</summary>
    public string Status { get; }

    public int Total { get; }

    public int Succeeded { get; }

    public int Failed { get; }

    public int Cancelled { get; }

    /// <summary>USD so far.</summary>
    public decimal Cost { get; }

    public bool IsDone => Status is "completed" or "cancelled";
}
