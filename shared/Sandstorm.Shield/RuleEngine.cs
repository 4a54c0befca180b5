namespace Sandstorm.Shield;

/// <summary>
/// Evaluates events against the default rules plus at most one tenant's rules: a tenant's rule never sees another
/// tenant's sandboxes because each sandbox is watched with its own tenant's engine.
/// </summary>
public sealed class RuleEngine
{
    private readonly CompiledRule[] rules;
    private readonly TimeProvider time;

    public RuleEngine(RuleSet defaults, RuleSet? tenant = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        if (defaults.TenantId is not null)
        {
            throw new ArgumentException("the first rule set must be the default one", nameof(defaults));
        }

        rules = [.. defaults.Rules.Concat(tenant?.Rules ?? []).Where(r => r.Enabled)];
        TenantId = tenant?.TenantId;
        time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>An engine with the default rules and, if given, one tenant's rules.</summary>
    public static RuleEngine For(RuleSet? tenantRules, TimeProvider? timeProvider = null) => new(ShieldRules.Default, tenantRules, timeProvider);

    public string? TenantId { get; }

    /// <summary>The rules evaluated (enabled ones only).</summary>
    public IReadOnlyList<CompiledRule> Rules => rules;

    /// <summary>Every rule the event fires, in rule-file order (defaults first).</summary>
    public List<Finding> Evaluate(ShieldEvent e)
    {
        List<Finding>? findings = null;
        foreach (var rule in rules)
        {
            if (!rule.Condition.Evaluate(e))
            {
                continue;
            }

            (findings ??= []).Add(new Finding
            {
                Rule = rule.Name,
                Priority = rule.Priority,
                Output = rule.Output.Render(e),
                Tags = rule.Tags,
                EventTime = e.Time,
                SandboxId = e.SandboxId,
                DetectedAt = time.GetUtcNow(),
                Detector = "shield",
                Source = "syscall",
                TenantId = rule.TenantId,
                OutputFields = rule.Output.RenderFields(e),
            });
        }

        return findings ?? [];
    }
}
