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

    /// <summary>Runs the tenant may submit per minute, sustained (a token bucket); more are refused with 429 and <c>Retry-After</c>. 0 or less: no limit.</summary>
    public int RunsPerMinute { get; init; } = 600;

    /// <summary>Runs the tenant may submit at once before <see cref="RunsPerMinute"/> paces it (the bucket's size).</summary>
    public int RunBurst { get; init; } = 200;

    /// <summary>Batches the tenant may submit per minute, sustained; more are refused with 429 and <c>Retry-After</c>. 0 or less: no limit.</summary>
    public int BatchesPerMinute { get; init; } = 60;

    /// <summary>Batches the tenant may submit at once before <see cref="BatchesPerMinute"/> paces it.</summary>
    public int BatchBurst { get; init; } = 20;

    public static TenantSettings Default { get; } = new();
}
