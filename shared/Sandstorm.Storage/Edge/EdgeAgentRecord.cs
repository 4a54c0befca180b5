using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage.Edge;

/// <summary>An enrolled edge agent: who it works for, where, and what it last reported.</summary>
public sealed record EdgeAgentRecord
{
    public required string TenantId { get; init; }

    public required string AgentId { get; init; }

    public required string Name { get; init; }

    public required string Region { get; init; }

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public bool VpcMode { get; init; }

    public DateTimeOffset EnrolledAt { get; init; }

    public DateTimeOffset? LastHeartbeat { get; init; }

    /// <summary>Public id of the agent's current token (a prefix of its hash; the token itself is never stored).</summary>
    public string? TokenId { get; init; }

    /// <summary>When the current token was issued (enrolment or the last rotation).</summary>
    public DateTimeOffset? TokenIssuedAt { get; init; }

    /// <summary>How many times the agent's token was rotated.</summary>
    public int TokenRotations { get; init; }

    /// <summary>The last heartbeat's body: runtimes, cpu, memory, load, queue depth.</summary>
    public EdgeHeartbeat? Heartbeat { get; init; }

    /// <summary>True when the agent heartbeated within <paramref name="deadAfter"/> of <paramref name="now"/>.</summary>
    public bool IsLive(DateTimeOffset now, TimeSpan deadAfter) => LastHeartbeat is { } at && now - at <= deadAfter;
}
