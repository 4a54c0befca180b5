namespace Sandstorm.Shield;

/// <summary>A rule ready to evaluate.</summary>
public sealed record CompiledRule
{
    public required string Name { get; init; }

    public string Description { get; init; } = string.Empty;

    public required Condition Condition { get; init; }

    public required OutputTemplate Output { get; init; }

    public Priority Priority { get; init; }

    public IReadOnlyList<string> Tags { get; init; } = [];

    public bool Enabled { get; init; } = true;

    /// <summary>Line of the rule in its file.</summary>
    public int Line { get; init; }

    /// <summary>Owner of the rule; null for the default ruleset.</summary>
    public string? TenantId { get; init; }
}

/// <summary>
/// A loaded rule file: its rules, and the lists and macros it defines (a tenant's file may use the default ones).
/// Build with <see cref="ShieldRules"/>.
/// </summary>
public sealed class RuleSet
{
    internal RuleSet(string? tenantId, IReadOnlyList<CompiledRule> rules, IReadOnlyDictionary<string, IReadOnlyList<string>> lists, IReadOnlyDictionary<string, Condition> macros)
    {
        TenantId = tenantId;
        Rules = rules;
        Lists = lists;
        Macros = macros;
    }

    /// <summary>Owner of the rules; null for the default ruleset.</summary>
    public string? TenantId { get; }

    /// <summary>Every rule of the file, disabled ones included (they are not evaluated).</summary>
    public IReadOnlyList<CompiledRule> Rules { get; }

    /// <summary>Lists by name, with lists named inside them expanded.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Lists { get; }

    internal IReadOnlyDictionary<string, Condition> Macros { get; }

    /// <summary>Names of the macros the file defines.</summary>
    public IEnumerable<string> MacroNames => Macros.Keys;
}
