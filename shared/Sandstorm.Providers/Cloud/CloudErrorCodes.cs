using Sandstorm.Core.Errors;

namespace Sandstorm.Providers.Cloud;

/// <summary>
/// Stable codes for sandbox-cloud failures. Where <see cref="ErrorCodes"/> has a fitting code it is reused;
/// the rest are cloud-specific (quota, concurrency caps, OOM, a lost sandbox) and are not yet in Core.
/// </summary>
public static class CloudErrorCodes
{
    public const string Unauthorized = ErrorCodes.Unauthorized;
    public const string Forbidden = ErrorCodes.Forbidden;
    public const string NotFound = ErrorCodes.NotFound;
    public const string ProvisionFailed = ErrorCodes.ProvisionFailed;
    public const string ExecutionFailed = ErrorCodes.ExecutionFailed;

    /// <summary>The provider stopped answering while the code may have been running; it was not run again.</summary>
    public const string ExecutionInterrupted = ErrorCodes.ExecutionInterrupted;

    /// <summary>Account quota or credits exhausted; retrying will not help until the account changes.</summary>
    public const string QuotaExceeded = "quota-exceeded";

    /// <summary>429: rate limit or concurrent-sandbox cap; transient, honour Retry-After. Also: this tenant's circuit is open.</summary>
    public const string RateLimited = "rate-limited";

    /// <summary>The sandbox ran out of memory.</summary>
    public const string OutOfMemory = "out-of-memory";

    /// <summary>The sandbox died or the connection to it was cut while the code ran.</summary>
    public const string SandboxLost = "sandbox-lost";

    /// <summary>The output stream went silent for longer than the read timeout.</summary>
    public const string StreamStalled = "stream-stalled";

    /// <summary>The provider answered with a body we could not parse.</summary>
    public const string BadResponse = "provider-bad-response";

    /// <summary>The provider did not answer in time.</summary>
    public const string Timeout = "provider-timeout";

    /// <summary>The provider could not be reached, answered 5xx, or its circuit is open.</summary>
    public const string Unavailable = "provider-unavailable";
}
