using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Sandstorm.Core.Contracts;
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

    // Tenants' compiled rule files by tenant and digest: an execution reuses what the previous one compiled.
    private static readonly ConcurrentDictionary<string, RuleSet> Compiled = new(StringComparer.Ordinal);

    /// <summary>
    /// The policy an execution's <see cref="ShieldSpec"/> asks for (null: the execution is not watched). The tenant's rules
    /// were validated when uploaded; a file that does not compile here (or an unknown threshold) throws
    /// <see cref="ArgumentException"/>, so the execution is refused rather than run unwatched.
    /// </summary>
    public static ShieldPolicy? For(ShieldSpec? spec)
    {
        if (spec is null)
        {
            return null;
        }

        if (!Priorities.TryParse(spec.QuarantineThreshold, out var threshold))
        {
            throw new ArgumentException($"Shield quarantine threshold '{spec.QuarantineThreshold}' is not a Falco priority", nameof(spec));
        }

        RuleSet? rules = null;
        if (!string.IsNullOrWhiteSpace(spec.Rules))
        {
            var key = spec.TenantId + "|" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(spec.Rules)));
            try
            {
                rules = Compiled.GetOrAdd(key, _ => ShieldRules.CompileTenant(spec.TenantId, spec.Rules));
            }
            catch (RuleValidationException e)
            {
                throw new ArgumentException($"tenant {spec.TenantId}'s Shield rules do not compile: {e.Message}", nameof(spec), e);
            }
        }

        return new ShieldPolicy { EgressAllowed = spec.EgressAllowed, TenantRules = rules, QuarantineThreshold = threshold };
    }
}
