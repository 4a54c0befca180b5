namespace Sandstorm.Edge.Commands;

/// <summary>Bad command-line arguments: the message is shown with the usage and the tool exits with 2.</summary>
public sealed class UsageException : Exception
{
    public UsageException(string message)
        : base(message)
    {
    }

    public UsageException()
    {
    }

    public UsageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
