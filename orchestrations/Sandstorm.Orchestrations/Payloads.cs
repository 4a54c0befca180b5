using Sandstorm.Core.Contracts;
using Sandstorm.Providers;
using Sandstorm.Storage;

namespace Sandstorm.Orchestrations;

// Small records that travel between the orchestrator and its activities. Large text (code, files, outputs)
// travels as a Payload: inline up to 16 KiB, else a blob reference.

/// <summary>
/// Input of a <see cref="SandboxRunOrchestrator"/> instance (instance id = run id). The request itself (code, files,
/// environment) travels only as <see cref="Request"/>, and only Execute reads it; every other step gets the
/// <see cref="RunTicket"/>, so the durable history holds the request once.
/// </summary>
public sealed record RunInput
{
    public required string RunId { get; init; }

    public required string TenantId { get; init; }

    /// <summary>Placement, billing and attestation fields of the request (no code, no secrets).</summary>
    public required RunIntent Intent { get; init; }

    /// <summary>The <see cref="RunRequest"/> as JSON.</summary>
    public required Payload Request { get; init; }

    /// <summary>Budget of the whole run (execution timeout plus routing, provisioning and settling), enforced by a durable timer.</summary>
    public required int DeadlineMs { get; init; }

    public required DateTimeOffset SubmittedAt { get; init; }

    public string? BatchId { get; init; }

    /// <summary>
    /// W3C <c>traceparent</c> of the submission: every step's span is its child, so the run is one trace. Carried in the
    /// input (not taken from the orchestrator, which replays); null for a run without one (its trace id follows from its id).
    /// </summary>
    public string? TraceParent { get; init; }

    /// <summary>What the steps other than Execute get.</summary>
    public RunTicket ToTicket() => new(RunId, TenantId, Intent, SubmittedAt, BatchId) { TraceParent = TraceParent };
}

/// <summary>A run as every step but Execute sees it: who, what was asked (without code), when.</summary>
public sealed record RunTicket(string RunId, string TenantId, RunIntent Intent, DateTimeOffset SubmittedAt, string? BatchId = null)
{
    /// <summary>The run's <see cref="RunInput.TraceParent"/>.</summary>
    public string? TraceParent { get; init; }
}

/// <summary>What Route returns: a decision, or why no placement fits.</summary>
public sealed record RouteOutcome(RouteDecision? Decision, RunError? Error);

/// <summary>Input of Provision: the run and the candidate to try.</summary>
public sealed record ProvisionInput(RunTicket Run, RouteCandidate Candidate);

/// <summary>What Provision returns: a lease, or a non-transient failure (transient ones throw and are retried).</summary>
public sealed record ProvisionOutcome(SandboxLease? Lease, RunError? Error);

/// <summary>Input of Execute: the only step that reads the request.</summary>
public sealed record ExecuteInput(RunTicket Run, SandboxLease Lease, Payload Request);

/// <summary>An <see cref="ExecutionResult"/> whose outputs travel by reference.</summary>
public sealed record ExecutionSummary
{
    public required string Runtime { get; init; }

    public required Payload Stdout { get; init; }

    public required Payload Stderr { get; init; }

    public bool StdoutTruncated { get; init; }

    public bool StderrTruncated { get; init; }

    public int? ExitCode { get; init; }

    public long WallTimeMs { get; init; }

    public long CpuTimeMs { get; init; }

    public long PeakMemoryBytes { get; init; }

    public bool OomKilled { get; init; }

    public bool TimedOut { get; init; }

    /// <summary>Host-side id of the sandbox (local and edge runtimes), for matching Falco alerts that arrive late.</summary>
    public string? ExecutionId { get; init; }

    /// <summary>What Shield's runtime monitor saw (local and edge runtimes); null where nothing watched.</summary>
    public ShieldReport? Shield { get; init; }

    /// <summary>Isolation level the execution really had (local runtimes; edge agents report it, checked against the job's).</summary>
    public IsolationLevel? Isolation { get; init; }
}

/// <summary>
/// What Execute returns: a finished execution, a failure, or (edge) the id of a dispatched job to wait for. A failure
/// with <see cref="NeverStarted"/> proves the code did not start, so trying again cannot run it twice; any other failure
/// is final.
/// </summary>
public sealed record ExecuteOutcome(ExecutionSummary? Result, RunError? Error, string? PendingJobId = null)
{
    public bool NeverStarted { get; init; }
}

/// <summary>Input of Monitor.</summary>
public sealed record MonitorInput(RunTicket Run, SandboxLease Lease, ExecutionSummary Result);

/// <summary>Shield's verdict over a run's usage and security events.</summary>
public sealed record MonitorOutcome(string Verdict, IReadOnlyList<string> Findings, bool Quarantine)
{
    /// <summary>Shield's report of the run (every Shield run has one, with its coverage; other runs only when an alert named them).</summary>
    public ShieldReport? Shield { get; init; }
}

/// <summary>Everything Settle needs to release, bill, record and sign a run, whatever happened.</summary>
public sealed record SettleInput
{
    public required RunTicket Run { get; init; }

    public required RunStatus Status { get; init; }

    public RunError? Error { get; init; }

    public RouteDecision? Route { get; init; }

    public SandboxLease? Lease { get; init; }

    public ExecutionSummary? Result { get; init; }

    public MonitorOutcome? Monitor { get; init; }

    public required DateTimeOffset StartedAt { get; init; }

    public required DateTimeOffset FinishedAt { get; init; }
}

/// <summary>What a run orchestration returns.</summary>
public sealed record RunOutcome(string RunId, RunStatus Status, decimal TotalCost, RunError? Error);

/// <summary>External event names of a run orchestration.</summary>
public static class RunEvents
{
    /// <summary>Raised by <c>DELETE /v1/runs/{id}</c>.</summary>
    public const string Cancel = "cancel";

    /// <summary>Raised when an edge agent posts the result of the run's job.</summary>
    public const string JobCompleted = "job-completed";
}
