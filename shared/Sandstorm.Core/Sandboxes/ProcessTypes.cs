namespace Sandstorm.Core.Sandboxes;

/// <summary>What to run in a kept sandbox.</summary>
public sealed record ProcessSpec
{
    /// <summary>The program and its arguments (for a shell command: <c>/bin/bash -l -c "..."</c>).</summary>
    public required IReadOnlyList<string> Arguments { get; init; }

    /// <summary>Working directory as the sandbox sees it; null: the home.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>The whole environment of the process.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Keep a stdin pipe open for <see cref="ISandboxProcess.SendInputAsync"/>; otherwise stdin is /dev/null.</summary>
    public bool Stdin { get; init; }

    /// <summary>A shell command line, as agents send it.</summary>
    public static IReadOnlyList<string> Shell(string command) => ["/bin/bash", "-l", "-c", command];
}

/// <summary>How a kept process ended: an exit code, or the signal that killed it.</summary>
public sealed record ProcessExit(int? Code, int? Signal)
{
    /// <summary>True when it ended because the whole sandbox did.</summary>
    public bool SandboxEnded { get; init; }
}

/// <summary>Which output stream a chunk came from.</summary>
public enum ProcessStream
{
    Stdout,
    Stderr,
}

/// <summary>Receives a kept process's output as it comes, on the sandbox's reader (so it must copy, not block).</summary>
public interface IProcessSink
{
    /// <summary>The process runs, with this pid; called before any of its output.</summary>
    void OnStarted(int pid)
    {
    }

    void OnOutput(ProcessStream stream, ReadOnlySpan<byte> data);
}

/// <summary>A file, directory or symlink in a kept sandbox, as its init saw it.</summary>
public sealed record SandboxFileInfo
{
    public required string Name { get; init; }

    /// <summary><c>file</c>, <c>dir</c> or <c>symlink</c>.</summary>
    public required string Type { get; init; }

    /// <summary>Absolute path inside the sandbox.</summary>
    public required string Path { get; init; }

    public long Size { get; init; }

    /// <summary>Permission bits (e.g. 420 = 0644).</summary>
    public int Mode { get; init; }

    /// <summary>As <c>ls -l</c> shows them, e.g. <c>-rw-r--r--</c>.</summary>
    public string? Permissions { get; init; }

    public string? Owner { get; init; }

    public string? Group { get; init; }

    /// <summary>Modification time, nanoseconds since the Unix epoch.</summary>
    public long ModifiedTime { get; init; }

    public string? SymlinkTarget { get; init; }

    public DateTimeOffset Modified => DateTimeOffset.UnixEpoch.AddTicks(ModifiedTime / 100);
}

/// <summary>A refusal or failure of a kept sandbox's operation, with a stable code (<see cref="SandboxErrors"/>).</summary>
public sealed class SandboxException : Exception
{
    public SandboxException(string code, string message)
        : base(message)
    {
        Code = code;
    }

    public SandboxException()
        : this(SandboxErrors.Io, "sandbox failure")
    {
    }

    public SandboxException(string message)
        : this(SandboxErrors.Io, message)
    {
    }

    public SandboxException(string message, Exception innerException)
        : base(message, innerException)
    {
        Code = SandboxErrors.Io;
    }

    public string Code { get; }
}

/// <summary>Codes of <see cref="SandboxException"/>: what a kept sandbox refused, named once.</summary>
public static class SandboxErrors
{
    public const string NotFound = "not_found";
    public const string Exists = "exists";
    public const string Outside = "outside";
    public const string IsDirectory = "is_dir";
    public const string NotDirectory = "not_dir";
    public const string TooLarge = "too_large";
    public const string NoSpace = "no_space";
    public const string Invalid = "invalid";
    public const string Denied = "denied";
    public const string Exec = "exec";
    public const string NoStdin = "no_stdin";
    public const string Io = "io";

    /// <summary>The sandbox has ended; nothing can reach it any more.</summary>
    public const string Gone = "gone";
}
