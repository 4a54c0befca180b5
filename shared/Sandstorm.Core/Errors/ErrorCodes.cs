namespace Sandstorm.Core.Errors;

/// <summary>Stable error codes; each is also the last segment of a problem+json <c>type</c>.</summary>
public static class ErrorCodes
{
    public const string TypePrefix = "https://sandstorm.dev/problems/";

    public const string ValidationFailed = "validation-failed";
    public const string MalformedJson = "malformed-json";
    public const string Unauthorized = "unauthorized";
    public const string Forbidden = "forbidden";
    public const string NotFound = "not-found";
    public const string MethodNotAllowed = "method-not-allowed";
    public const string Conflict = "conflict";
    public const string PayloadTooLarge = "payload-too-large";
    public const string UnsupportedMediaType = "unsupported-media-type";
    public const string NoCandidate = "no-candidate";
    public const string IsolationUnavailable = "isolation-unavailable";
    public const string ProvisionFailed = "provision-failed";
    public const string ExecutionFailed = "execution-failed";
    public const string RunTimedOut = "run-timed-out";
    public const string Cancelled = "cancelled";
    public const string NotSupported = "not-supported";
    public const string Internal = "internal-error";

    /// <summary>A credential that was valid once but has expired (edge enrollment tokens).</summary>
    public const string TokenExpired = "token-expired";

    /// <summary>An edge enrollment token that was revoked by its tenant.</summary>
    public const string TokenRevoked = "token-revoked";

    /// <summary>A single-use (or n-use) edge enrollment token that has enrolled all the agents it may.</summary>
    public const string TokenUsed = "token-used";

    /// <summary>An edge agent posted for a job it no longer holds (its lease expired and the job went elsewhere or was settled).</summary>
    public const string LeaseLost = "lease-lost";

    /// <summary>An execution reported a weaker isolation than the run required: its result is refused and the run fails.</summary>
    public const string IsolationBelowRequired = "isolation-below-required";

    /// <summary>An edge agent stopped heartbeating while it held a run's job and no other agent could take it.</summary>
    public const string EdgeAgentLost = "edge-agent-lost";

    /// <summary>
    /// The provider stopped answering (or its answer was lost) while the code may have been running; it was not run again,
    /// because running it a second time could repeat its effects.
    /// </summary>
    public const string ExecutionInterrupted = "execution-interrupted";

    /// <summary>A kept sandbox has ended (stopped, expired, lost or quarantined): nothing reaches it any more.</summary>
    public const string SandboxEnded = "sandbox-ended";

    /// <summary>A command ran longer than its own timeout and was killed (the sandbox lives on).</summary>
    public const string CommandTimedOut = "command-timed-out";

    /// <summary>A tenant's quota (live sandboxes, rate) is used up; <c>Retry-After</c> says when to try again.</summary>
    public const string QuotaExceeded = "quota-exceeded";

    /// <summary>A path that leads outside a sandbox's work directory (<c>/home/user</c>) and <c>/tmp</c>.</summary>
    public const string PathOutside = "path-outside";

    /// <summary>A sandbox's disk is full.</summary>
    public const string NoSpace = "no-space";

    /// <summary>The problem+json <c>type</c> URI of a code.</summary>
    public static string TypeUri(string code) => TypePrefix + code;
}
