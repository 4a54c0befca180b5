namespace Sandstorm.Core.Contracts;

// Wire contracts between edge agents and the control plane. Agents only ever call out (HTTPS):
//   POST /v1/edge/agents                          enrol (Bearer enrollment token) -> EdgeEnrollResponse
//   POST /v1/edge/agents/{agentId}/heartbeat      EdgeHeartbeat                  -> 200
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
public sealed record EdgeRuntimeStatus(string Name, IsolationLevel Isolation, bool Works, string? Reason = null);

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
}

/// <summary>Jobs handed out by one poll.</summary>
public sealed record EdgeJobBatch(IReadOnlyList<EdgeJob> Jobs);

/// <summary>Result of a job, posted (and re-posted from the outbox) until acknowledged.</summary>
public sealed record EdgeJobResult
{
    public required string JobId { get; init; }

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
