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

    public string? PreferredRegion { get; init; }
}
