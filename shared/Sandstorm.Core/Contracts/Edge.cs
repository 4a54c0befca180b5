namespace Sandstorm.Core.Contracts;

// Wire contracts between edge agents and the control plane. Agents only ever call out (HTTPS):
//   POST /v1/edge/agents                          enrol (Bearer enrollment token) -> EdgeEnrollResponse
//   POST /v1/edge/agents/{agentId}/heartbeat      EdgeHeartbeat (+ jobs held)    -> 200 EdgeHeartbeatAck (+ jobs to cancel)
//   GET  /v1/edge/agents/{agentId}/jobs?wait=25   long poll                      -> 200 EdgeJobBatch (possibly empty)
//   POST /v1/edge/agents/{agentId}/jobs/{jobId}/result  EdgeJobResult (idempotent by job id) -> 200
//   POST /v1/edge/agents/{agentId}/telemetry      EdgeTelemetryBatch (idempotent by event id) -> 202
// All but enrolment carry "Authorization: Bearer <agent token>".

/// <summary>Body of an enrolment.</summary>
public sealed record EdgeEnrollRequest
{
    public required string Name { get; init; }

    public string? Region { get; init; }

    public bool VpcMode { get; init; }

    public IReadOnlyDictionary<string, string>? Labels { get; init; }
}

/// <summary>What the control plane issues an enrolled agent. The token is shown once.</summary>
public sealed record EdgeEnrollResponse(string AgentId, string AgentToken, string TenantId);

/// <summary>A runtime as probed on the agent's machine.</summary>
public sealed record EdgeRuntimeStatus(string Name, IsolationLevel Isolation, bool Works, string? Reason = null)
{
    /// <summary>Shield's runtime monitoring of this runtime on the agent (none without eBPF; old agents do not say: none).</summary>
    public ShieldCoverageLevel Shield { get; init; }

    /// <summary>Why Shield's coverage of this runtime is not full.</summary>
    public string? ShieldReason { get; init; }

    /// <summary>How the runtime bounds memory, pids and CPU on the agent (cgroups, or rlimits where they cannot be had).</summary>
    public string? Limits { get; init; }
}

/// <summary>Periodic liveness and capacity report of an agent.</summary>
public sealed record EdgeHeartbeat
{
    public required IReadOnlyList<EdgeRuntimeStatus> Runtimes { get; init; }

    public double Cpu { get; init; }

    public long MemoryMiB { get; init; }

    /// <summary>One-minute load average.</summary>
    public double Load { get; init; }

    /// <summary>Jobs accepted but not finished.</summary>
    public int QueueDepth { get; init; }

    public int MaxConcurrency { get; init; } = 2;

    /// <summary>
    /// Languages the agent's machine can run (TypeScript needs Node.js and the TypeScript compiler installed). Null from
    /// agents that do not report it: they run <see cref="Languages.Baseline"/>, and know nothing of entry points.
    /// </summary>
    public IReadOnlyList<string>? Languages { get; init; }

    /// <summary>
    /// Jobs the agent holds: running, or finished with the result not yet acknowledged. A leased job missing from
    /// heartbeats for longer than the lease timeout was never received (a lost poll answer) and is offered again.
    /// Null from agents that do not report it; their leases never expire this way.
    /// </summary>
    public IReadOnlyList<string>? Jobs { get; init; }

    /// <summary>
    /// The bootable image the agent's machine was booted from (a BootKit or bootc image), as the image says of itself.
    /// Null on machines not booted from one; bare-metal runs (<c>deployment: "bare-metal"</c>) go only to agents reporting
    /// the image they name.
    /// </summary>
    public EdgeBootImage? BootcImage { get; init; }
}

/// <summary>A bootable image: its name (<c>registry.example/my-ai-os:v1.0</c>) and digest (<c>sha256:</c> + 64 hex).</summary>
public sealed record EdgeBootImage(string Name, string Digest)
{
    /// <summary>Why the image is malformed; null when it is well formed.</summary>
    public static string? Problem(EdgeBootImage image) =>
        string.IsNullOrWhiteSpace(image.Name) || image.Name.Length > 256 || image.Name.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c == '@')
            ? "bootcImage.name is 1-256 characters, no spaces or '@'"
            : !IsDigest(image.Digest) ? "bootcImage.digest is sha256: followed by 64 lower-case hex digits" : null;

    /// <summary>True for <c>sha256:</c> followed by 64 lower-case hex digits.</summary>
    public static bool IsDigest(string? digest) =>
        digest is { Length: 71 } && digest.StartsWith("sha256:", StringComparison.Ordinal) && digest[7..].All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));
}

/// <summary>One unit of work for an agent.</summary>
public sealed record EdgeJob
{
    public required string JobId { get; init; }

    public required string RunId { get; init; }

    /// <summary>Runtime to use; null lets the agent pick the best for the isolation level.</summary>
    public string? Runtime { get; init; }

    public required ExecutionSpec Spec { get; init; }

    public DateTimeOffset Deadline { get; init; }

    /// <summary>W3C <c>traceparent</c> of the run's execute step: the agent's span of the job is its child, so the run stays one trace.</summary>
    public string? TraceParent { get; init; }
}

/// <summary>Jobs handed out by one poll.</summary>
public sealed record EdgeJobBatch(IReadOnlyList<EdgeJob> Jobs);

/// <summary>Result of a job, posted (and re-posted from the outbox) until acknowledged.</summary>
public sealed record EdgeJobResult
{
    public required string JobId { get; init; }

    /// <summary>
    /// Isolation level of the runtime that ran the job (<see cref="ExecutionResult.Runtime"/>), as the agent reports it. A
    /// result below the job's level is refused and fails the run; one without it counts the level the agent's last
    /// heartbeat advertised for that runtime.
    /// </summary>
    public IsolationLevel? Isolation { get; init; }

    /// <summary>Set when the job could not run at all (no runtime for the level, spec refused).</summary>
    public RunError? Error { get; init; }

    public ExecutionResult? Result { get; init; }
}

/// <summary>A runtime event or run metric observed on an agent.</summary>
public sealed record EdgeTelemetryEvent
{
    /// <summary>Unique per agent; the control plane applies each id once.</summary>
    public required string EventId { get; init; }

    public string? JobId { get; init; }

    public required string Kind { get; init; }

    public DateTimeOffset At { get; init; }

    public IReadOnlyDictionary<string, string>? Data { get; init; }
}

/// <summary>Telemetry sent in one request.</summary>
public sealed record EdgeTelemetryBatch(IReadOnlyList<EdgeTelemetryEvent> Events);

// Control-plane side of enrolment: a tenant (API key) creates enrollment tokens that agents enrol with, lists and revokes them.
//   POST   /v1/edge/enrollment-tokens        EdgeEnrollmentTokenRequest -> 201 EdgeEnrollmentTokenResponse
//   GET    /v1/edge/enrollment-tokens        -> 200 EdgeEnrollmentTokenList
//   DELETE /v1/edge/enrollment-tokens/{id}   -> 204
//   POST   /v1/edge/agents/{agentId}/rotate  -> 200 EdgeAgentTokenResponse (the old agent token stops working at once)

/// <summary>Body of <c>POST /v1/edge/enrollment-tokens</c> (may be empty).</summary>
public sealed record EdgeEnrollmentTokenRequest
{
    /// <summary>Lifetime of the token; default 15, at most 1440 (a day).</summary>
    public int? TtlMinutes { get; init; }

    /// <summary>Region the enrolled agents serve; when set, agents enrolled with this token are placed in it.</summary>
    public string? Region { get; init; }

    /// <summary>Agents the token may enrol; default 1 (single-use), at most 100.</summary>
    public int? MaxUses { get; init; }
}

/// <summary>
/// An enrollment token, shown once. Single-use unless created with <c>maxUses</c> above 1; it only lets agents join the
/// tenant that created it (an agent can take that tenant's jobs and nothing else). <see cref="Id"/> lists and revokes it.
/// </summary>
public sealed record EdgeEnrollmentTokenResponse(string Token, DateTimeOffset ExpiresAt, string? Region, bool MultiUse)
{
    public string Id { get; init; } = "";

    public int MaxUses { get; init; } = 1;
}

/// <summary>A tenant's enrollment token as listed (never the token itself).</summary>
public sealed record EdgeEnrollmentTokenInfo
{
    public required string Id { get; init; }

    public string? Region { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset ExpiresAt { get; init; }

    public int MaxUses { get; init; }

    public int Uses { get; init; }

    public DateTimeOffset? LastUsedAt { get; init; }

    public DateTimeOffset? RevokedAt { get; init; }

    /// <summary><c>active</c>, <c>used</c>, <c>expired</c> or <c>revoked</c>.</summary>
    public required string State { get; init; }
}

/// <summary>Answer of <c>GET /v1/edge/enrollment-tokens</c>: newest first.</summary>
public sealed record EdgeEnrollmentTokenList(IReadOnlyList<EdgeEnrollmentTokenInfo> Tokens);

/// <summary>A new agent token from a rotation, shown once; every earlier token of the agent stopped working.</summary>
public sealed record EdgeAgentTokenResponse(string AgentId, string AgentToken, string TokenId, DateTimeOffset IssuedAt);

/// <summary>Answer to a heartbeat: how long the control plane waits for the next one before it gives the agent's jobs away.</summary>
public sealed record EdgeHeartbeatAck(string AgentId, int DeadAfterSeconds, DateTimeOffset ServerTime)
{
    /// <summary>
    /// Held jobs the agent must stop: their run was cancelled or ended, or the job went to another agent or was
    /// failed meanwhile. The agent kills the sandbox and posts an error result with code <c>cancelled</c>.
    /// </summary>
    public IReadOnlyList<string> Cancel { get; init; } = [];

    /// <summary>
    /// Falco alerts matched to nothing the control plane can name, sent to the agents of the tenant (or the agent that
    /// sent them): an agent holding a sandbox the alert names kills it and reports the finding with that job's result.
    /// </summary>
    public IReadOnlyList<EdgeQuarantineRequest> Quarantine { get; init; } = [];
}

/// <summary>
/// A Falco alert for an edge agent to match against its own sandboxes (by the host-side ids and host pids it names) and,
/// when it holds one, to quarantine: every process killed, the finding reported with the job's result.
/// </summary>
public sealed record EdgeQuarantineRequest
{
    public required ShieldFinding Finding { get; init; }

    /// <summary>Host-side sandbox ids the alert names (a full id, or Falco's 12-character short container id).</summary>
    public IReadOnlyList<string> SandboxIds { get; init; } = [];

    /// <summary>Host pids the alert names (<c>proc.pid</c>...), resolved by the agent through their cgroup.</summary>
    public IReadOnlyList<int> Pids { get; init; } = [];

    /// <summary>Falco's <c>hostname</c>: the agent looks pids up only when it is its own machine (or not said).</summary>
    public string? Hostname { get; init; }

    /// <summary>True when the finding is at or above the tenant's quarantine threshold (else it is only reported).</summary>
    public bool Kill { get; init; }
}

/// <summary>Answer to a result post: <c>Applied</c> is false when the result had already been applied (a re-post).</summary>
public sealed record EdgeJobResultAck(string JobId, bool Applied);

/// <summary>Answer to a telemetry post: events stored now, and events already stored before (re-posts).</summary>
public sealed record EdgeTelemetryAck(int Accepted, int Duplicates);
