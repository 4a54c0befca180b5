namespace Sandstorm.BootKit;

/// <summary>A Dockerfile BootKit refuses: what is wrong, and on which line (0 when it is the file as a whole).</summary>
public sealed class DockerfileException : Exception
{
    public DockerfileException(int line, string reason)
        : base(line > 0 ? $"Dockerfile line {line}: {reason}" : $"Dockerfile: {reason}")
    {
        Line = line;
        Reason = reason;
    }

    public DockerfileException()
        : this(0, "refused")
    {
    }

    public DockerfileException(string message)
        : this(0, message)
    {
    }

    public DockerfileException(string message, Exception innerException)
        : base(message, innerException)
    {
        Reason = message;
    }

    /// <summary>The 1-based line of the instruction; 0 for the whole file.</summary>
    public int Line { get; }

    /// <summary>The reason without the line prefix.</summary>
    public string Reason { get; } = "";
}
