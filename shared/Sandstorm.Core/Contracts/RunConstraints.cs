namespace Sandstorm.Core.Contracts;

/// <summary>Limits and preferences the router must honour.</summary>
public sealed record RunConstraints
{
    /// <summary>Most the caller will pay for the run, in USD.</summary>
    public decimal? MaxCost { get; init; }

    /// <summary>Longest acceptable end-to-end latency, in milliseconds.</summary>
    public int? MaxLatency { get; init; }

    public IReadOnlyList<string>? PreferredProviders { get; init; }

    public IReadOnlyList<string>? ExcludeProviders { get; init; }

    /// <summary>
    /// Where the caller is (a soft preference): other regions stay candidates, priced through their predicted latency from
    /// here plus <see cref="PreferredRegionWeight"/>. To exclude regions use <see cref="AllowedRegions"/>.
    /// </summary>
    public string? PreferredRegion { get; init; }

    /// <summary>
    /// How much more than its real network cost a region away from <see cref="PreferredRegion"/> counts: each millisecond
    /// of round trip between the two adds this many milliseconds to the latency the strategy weighs (0–100, default 0 =
    /// only what the hop really costs the run).
    /// </summary>
    public double? PreferredRegionWeight { get; init; }

    /// <summary>
    /// Hard region constraint: region names (<c>eu-west</c>) or residency sets (<c>eu</c>, <c>us</c>, <c>ap</c>); a
    /// candidate elsewhere is never used, and a run nothing inside can serve is refused with <c>no-candidate</c>.
    /// </summary>
    public IReadOnlyList<string>? AllowedRegions { get; init; }

    /// <summary>Most grams of CO₂e the run may emit, by the grid intensity of the region at the hour it runs.</summary>
    public double? MaxCarbon { get; init; }

    // The v1 SDK and the launch post put these here; each is an alias of a request field and is folded into it when the
    // request is validated (RunRequestValidator.Normalize), so a canonical request never carries them.

    /// <summary>Alias of <see cref="RunRequest.Cpu"/> (v1 SDK); both given and different is refused.</summary>
    public double? Cpu { get; init; }

    /// <summary>Alias of <see cref="RunRequest.Memory"/> in MiB (v1 SDK); both given and different is refused.</summary>
    public int? Memory { get; init; }

    /// <summary>Alias of <see cref="RunRequest.Timeout"/> in milliseconds (v1 SDK); both given and different is refused.</summary>
    public int? Timeout { get; init; }

    /// <summary>Alias of <see cref="RunRequest.IsolationLevel"/> (launch post); when both are given the stronger one applies.</summary>
    public IsolationLevel? Isolation { get; init; }

    /// <summary>Asks for a GPU (v1 SDK): refused while no configured provider offers one.</summary>
    public bool? Gpu { get; init; }

    /// <summary>Asks for a GPU (v1 SDK's constraint name): refused while no configured provider offers one.</summary>
    public bool? RequireGpu { get; init; }

    /// <summary>
    /// Shield runs only: place the run only where Shield's runtime monitoring really covers it (full or partial), never on
    /// a placement without it (the clouds, an agent without eBPF); a run nothing can cover is refused with <c>no-candidate</c>.
    /// </summary>
    public bool? RequireShieldCoverage { get; init; }
}
