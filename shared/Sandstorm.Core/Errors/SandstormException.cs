namespace Sandstorm.Core.Errors;

/// <summary>A failure with a stable code and HTTP status, rendered as problem+json at the edge.</summary>
public class SandstormException : Exception
{
    public SandstormException(string code, string message, int status = 400, IReadOnlyDictionary<string, string[]>? errors = null)
        : base(message)
    {
        Code = code;
        Status = status;
        Errors = errors;
    }

    public SandstormException()
        : this(ErrorCodes.Internal, "internal error", 500)
    {
    }

    public SandstormException(string message)
        : this(ErrorCodes.Internal, message, 500)
    {
    }

    public SandstormException(string message, Exception innerException)
        : base(message, innerException)
    {
        Code = ErrorCodes.Internal;
        Status = 500;
    }

    public string Code { get; }

    public int Status { get; }

    /// <summary>Field-level errors (field → messages) for validation failures.</summary>
    public IReadOnlyDictionary<string, string[]>? Errors { get; }

    /// <summary>When a refused request may be tried again (429, 503): sent as <c>Retry-After</c>.</summary>
    public TimeSpan? RetryAfter { get; init; }
}
