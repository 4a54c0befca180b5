namespace Sandstorm.Shield;

/// <summary>Loads rule files: Shield's default ruleset (embedded) and tenants' own files, validated on upload.</summary>
public static class ShieldRules
{
    /// <summary>The default ruleset's YAML, as shipped (Falco's format).</summary>
    public static string DefaultYaml { get; } = ReadResource("default-rules.yaml");

    private static readonly Lazy<RuleSet> DefaultSet = new(() => Load(DefaultYaml));

    /// <summary>The default ruleset, compiled once.</summary>
    public static RuleSet Default => DefaultSet.Value;

    /// <summary>Loads a standalone rule file (no tenant, nothing shared); throws <see cref="RuleValidationException"/>.</summary>
    public static RuleSet Load(string yaml) => RuleLoader.Load(yaml, tenantId: null, baseSet: null);

    /// <summary>
    /// Compiles a tenant's rule file. It may use the default lists and macros; it may not redefine, append to or disable
    /// any default item, so a tenant can add detections but never weaken the defaults. Throws
    /// <see cref="RuleValidationException"/> listing every problem with its line.
    /// </summary>
    public static RuleSet CompileTenant(string tenantId, string yaml)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(tenantId);
        return RuleLoader.Load(yaml, tenantId, Default);
    }

    /// <summary>Checks a tenant's rule file without keeping it: the errors (empty when it loads).</summary>
    public static IReadOnlyList<RuleError> Validate(string tenantId, string yaml)
    {
        try
        {
            CompileTenant(tenantId, yaml);
            return [];
        }
        catch (RuleValidationException e)
        {
            return e.Errors;
        }
    }

    private static string ReadResource(string name)
    {
        using var stream = typeof(ShieldRules).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded resource {name} is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
