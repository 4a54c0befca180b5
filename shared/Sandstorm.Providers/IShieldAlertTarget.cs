using Sandstorm.Core.Contracts;

namespace Sandstorm.Providers;

/// <summary>
/// A provider that can take a Falco alert to the sandboxes it runs: find the one the alert names (by host-side id, Falco's
/// short container id, or a host pid inside it), kill it when the finding is at or above the tenant's threshold, and
/// report the finding with the run's result. The local provider does it at once; edge agents on their next heartbeat.
/// </summary>
public interface IShieldAlertTarget
{
    /// <summary>What the provider did with the alert; null when it runs no sandbox the alert names (for this tenant).</summary>
    Task<ShieldAlertMatch?> DeliverAsync(ShieldAlertDelivery alert, CancellationToken cancellationToken);
}

/// <summary>An alert for one tenant, with the sandbox ids and pids it names.</summary>
public sealed record ShieldAlertDelivery
{
    public required string TenantId { get; init; }

    /// <summary>The edge agent that sent the alert (its token), if one did: only its own sandboxes are looked at.</summary>
    public string? AgentId { get; init; }

    public required ShieldFinding Finding { get; init; }

    public IReadOnlyList<string> SandboxIds { get; init; } = [];

    public IReadOnlyList<int> Pids { get; init; } = [];

    /// <summary>
    /// Falco's <c>hostname</c>: pids are only looked up on the machine of that name (a pid means nothing elsewhere); null
    /// when the alert does not say.
    /// </summary>
    public string? Hostname { get; init; }

    /// <summary>True when the finding is at or above the tenant's threshold: the sandbox is killed.</summary>
    public bool Kill { get; init; }
}

/// <summary>What a provider did with an alert.</summary>
public sealed record ShieldAlertMatch
{
    public required string Provider { get; init; }

    /// <summary><c>killed</c>, <c>reported</c> (below the threshold) or <c>requested</c> (handed to edge agents to match).</summary>
    public required string Action { get; init; }

    /// <summary>The sandbox's host-side id, when matched here.</summary>
    public string? SandboxId { get; init; }

    /// <summary>The run it served, when it was a run's.</summary>
    public string? RunId { get; init; }

    /// <summary>True for a kept sandbox.</summary>
    public bool Kept { get; init; }

    /// <summary>The finding as recorded (with its quarantine latency when it killed).</summary>
    public required ShieldFinding Finding { get; init; }
}
