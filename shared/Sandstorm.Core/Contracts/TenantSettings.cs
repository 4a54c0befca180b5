namespace Sandstorm.Core.Contracts;

/// <summary>What a tenant has opted into and the limits it runs under; a tenant without a settings row gets the defaults.</summary>
public sealed record TenantSettings
{
    /// <summary>
    /// The tenant's consent to isolation <c>none</c> (its code as a plain process). It still runs only where the operator
    /// allows it (the local development host, or an edge agent started with an explicit flag).
    /// </summary>
    public bool AllowUnisolated { get; init; }

    public static TenantSettings Default { get; } = new();
}
