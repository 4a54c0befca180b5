using Sandstorm.Core.Errors;

namespace Sandstorm.Routing;

/// <summary>No placement satisfies the run; the message names the constraint that binds.</summary>
public sealed class NoCandidateException : SandstormException
{
    public NoCandidateException(string code, string message)
        : base(code, message, 422)
    {
    }

    public NoCandidateException()
        : base(ErrorCodes.NoCandidate, "no candidate", 422)
    {
    }

    public NoCandidateException(string message)
        : base(ErrorCodes.NoCandidate, message, 422)
    {
    }

    public NoCandidateException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
