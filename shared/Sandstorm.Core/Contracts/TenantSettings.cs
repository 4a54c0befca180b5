namespace Sandstorm.Core.Contracts;

/// <summary>What a tenant has opted into and the limits it runs under; a tenant without a settings row gets the defaults.</summary>
public sealed record TenantSettings
{
    /// <summary>
    /// The tenant's consent to isolation <c>none</c> (its code as a plain process). It still runs only where the operator
    /// allows it (the local development host, or an edge agent started with an explicit flag).
    /// </summary>
    public bool AllowUnisolated { get; init; }

    /// <summary>Most kept sandboxes alive at once; one more is refused with 429 until one ends.</summary>
    public int MaxSandboxes { get; init; } = 20;

    /// <summary>Longest lifetime a kept sandbox may be given (or extended to), in seconds from now.</summary>
    public int MaxSandboxLifetimeSeconds { get; init; } = 3600;

    public static TenantSettings Default { get; } = new();
}
