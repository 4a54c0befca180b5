using Sandstorm.Shield;

namespace Sandstorm.Runtimes.Shield;

/// <summary>How one sandbox is watched: its network policy, its tenant's rules, when to quarantine, who to tell.</summary>
public sealed record ShieldPolicy
{
    /// <summary>Whether the sandbox may reach the network (Shield's <c>shield.egress</c>); the runtimes here give none.</summary>
    public bool EgressAllowed { get; init; }

    /// <summary>The tenant's own rules (<see cref="ShieldRules.CompileTenant"/>), evaluated with the defaults; null for defaults only.</summary>
    public RuleSet? TenantRules { get; init; }

    /// <summary>A finding at or above this priority kills every process of the sandbox.</summary>
    public Priority QuarantineThreshold { get; init; } = Priority.Critical;

    /// <summary>Called for every finding (after the quarantine, with its latency, when the finding quarantined).</summary>
    public Func<Finding, ValueTask>? OnFinding { get; init; }

    /// <summary>Called with the watch handle when monitoring of the sandbox starts (before its first process).</summary>
    public Action<ShieldWatch>? OnWatch { get; init; }
}
