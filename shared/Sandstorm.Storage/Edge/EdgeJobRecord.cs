using Azure;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage.Edge;

/// <summary>Life of an edge job: queued for an agent → leased by its poll → completed (result or failure), or cancelled by release.</summary>
public enum EdgeJobState
{
    Queued,
    Leased,
    Completed,
    Cancelled,
}

/// <summary>One run's execution on an edge agent. Updated only with its ETag, so concurrent polls and sweeps never both win.</summary>
public sealed record EdgeJobRecord
{
    public required string TenantId { get; init; }

    public required string JobId { get; init; }

    public required string RunId { get; init; }

    /// <summary>The agent the job is assigned to now.</summary>
    public required string AgentId { get; init; }

    /// <summary>Every agent the job was ever assigned to (a result from any of them is accepted once).</summary>
    public IReadOnlyList<string> Agents { get; init; } = [];

    public EdgeJobState State { get; init; } = EdgeJobState.Queued;

    /// <summary>Runtime the router chose; null lets the agent pick the best for the isolation level.</summary>
    public string? Runtime { get; init; }

    public required string Region { get; init; }

    public IsolationLevel IsolationLevel { get; init; }

    /// <summary>The <see cref="ExecutionSpec"/> as JSON: inline when small, else a blob.</summary>
    public required Payload Spec { get; init; }

    /// <summary>How many times an agent has leased the job.</summary>
    public int Attempts { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset Deadline { get; init; }

    /// <summary>W3C <c>traceparent</c> of the step that dispatched the job (handed to the agent with it).</summary>
    public string? TraceParent { get; init; }

    /// <summary>A bare-metal run's image (<c>name[@sha256:…]</c>): the job only ever moves to agents booted from it.</summary>
    public string? BootcImage { get; init; }

    public DateTimeOffset? LeasedAt { get; init; }

    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>The run's execute outcome as JSON (set with <see cref="EdgeJobState.Completed"/>); kept so a lost event can be raised again.</summary>
    public Payload? Outcome { get; init; }

    /// <summary>True once the completion event reached the run.</summary>
    public bool EventRaised { get; init; }

    /// <summary>How many completion events were raised (1 in every healthy history; a test asserts it).</summary>
    public int EventsRaised { get; init; }

    /// <summary>Result posts received, re-posts included.</summary>
    public int Deliveries { get; init; }

    /// <summary>Which agent's result was applied, or why the control plane failed the job.</summary>
    public string? CompletedBy { get; init; }

    public ETag ETag { get; init; }
}
