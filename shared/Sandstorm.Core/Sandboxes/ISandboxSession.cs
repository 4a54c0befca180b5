namespace Sandstorm.Core.Sandboxes;

/// <summary>
/// A live kept sandbox, wherever it is held: this machine's runtimes, an edge agent over its link, or a cloud's own
/// sandbox. Every surface (Sandstorm's API, E2B's wire, MCP, the SDKs) reaches a sandbox through this, and none of it
/// goes through the durable engine: a command's round trip costs what the place that holds the sandbox costs.
/// </summary>
public interface ISandboxSession
{
    /// <summary>Completes when the sandbox has ended (destroyed, or died with its host).</summary>
    Task Ended { get; }

    /// <summary>True while commands and file operations can reach it.</summary>
    bool IsAlive { get; }

    /// <summary>Starts a command; returns once it runs. Its output goes to <paramref name="sink"/> as it comes.</summary>
    Task<ISandboxProcess> StartProcessAsync(ProcessSpec spec, IProcessSink sink, CancellationToken ct);

    /// <summary>The running process with this pid (as the sandbox numbers it), or null.</summary>
    ISandboxProcess? FindProcess(int pid);

    /// <summary>Processes started through this session that have not ended.</summary>
    IReadOnlyCollection<ISandboxProcess> Processes { get; }

    /// <summary>Processes in the sandbox (besides its own init), as the sandbox counts them.</summary>
    Task<int> CountProcessesAsync(CancellationToken ct);

    /// <summary>Kills every process in the sandbox, leaving the sandbox itself up.</summary>
    Task KillAllAsync(CancellationToken ct);

    /// <summary>The entry at a path (a final symlink is reported, not followed).</summary>
    Task<SandboxFileInfo> StatAsync(string path, CancellationToken ct);

    /// <summary>Entries under a directory, up to <paramref name="depth"/> levels down, in pre-order.</summary>
    Task<IReadOnlyList<SandboxFileInfo>> ListAsync(string path, int depth, CancellationToken ct);

    /// <summary>Creates a directory and its parents; <see cref="SandboxErrors.Exists"/> when it is already there.</summary>
    Task<SandboxFileInfo> MakeDirectoryAsync(string path, CancellationToken ct);

    /// <summary>Moves (renames) an entry; the destination's parents are created.</summary>
    Task<SandboxFileInfo> MoveAsync(string path, string destination, CancellationToken ct);

    /// <summary>Removes a file, a symlink or (recursively) a directory.</summary>
    Task RemoveAsync(string path, CancellationToken ct);

    /// <summary>Writes a file of at most <paramref name="limit"/> bytes, whole or not at all.</summary>
    Task<SandboxFileInfo> WriteFileAsync(string path, Stream content, long limit, CancellationToken ct);

    /// <summary>Reads a file of at most <paramref name="limit"/> bytes: <paramref name="open"/> gets its entry and returns where the bytes go.</summary>
    Task<SandboxFileInfo> ReadFileAsync(string path, long limit, Func<SandboxFileInfo, Stream> open, CancellationToken ct);
}

/// <summary>A command running in a kept sandbox.</summary>
public interface ISandboxProcess
{
    /// <summary>Its pid, as the sandbox numbers it.</summary>
    int Pid { get; }

    ProcessSpec Spec { get; }

    /// <summary>Completes when it has ended and all its output was delivered.</summary>
    Task<ProcessExit> Exited { get; }

    /// <summary>Writes to its stdin (when it was started with one).</summary>
    Task SendInputAsync(ReadOnlyMemory<byte> data, CancellationToken ct);

    /// <summary>Closes its stdin once what was sent has been written.</summary>
    Task CloseInputAsync();

    /// <summary>Sends a signal to it and its process group (SIGKILL by default).</summary>
    Task SignalAsync(int signal = 9);
}
