using System.Net;

namespace Sandstorm.Providers.Cloud;

/// <summary>
/// The raw HTTP failure behind a <see cref="ProviderException"/> (its inner exception): status, the provider's
/// body and its Retry-After, which the resilience pipeline honours.
/// </summary>
public sealed class HttpStatusFailure : Exception
{
    public HttpStatusFailure(HttpStatusCode status, string body, TimeSpan? retryAfter)
        : base($"HTTP {(int)status}: {Truncate(body)}")
    {
        Status = status;
        Body = body;
        RetryAfter = retryAfter;
    }

    public HttpStatusFailure()
        : this(HttpStatusCode.InternalServerError, "", null)
    {
    }

    public HttpStatusFailure(string message)
        : this(HttpStatusCode.InternalServerError, message, null)
    {
    }

    public HttpStatusFailure(string message, Exception innerException)
        : base(message, innerException)
    {
        Body = message;
    }

    public HttpStatusCode Status { get; }

    public string Body { get; }

    public TimeSpan? RetryAfter { get; }

    private static string Truncate(string body) => body.Length <= 512 ? body : body[..512] + "…";
}
