namespace Sandstorm.Core.Contracts;

/// <summary>The state or outcome of a run, as returned by <c>GET /v1/runs/{id}</c>.</summary>
public sealed record RunResult
{
    public required string Id { get; init; }

    public required RunStatus Status { get; init; }

    public string? Provider { get; init; }

    public string? Runtime { get; init; }

    public string? Region { get; init; }

    public string? Stdout { get; init; }

    public string? Stderr { get; init; }

    public int? ExitCode { get; init; }

    /// <summary>Execution wall time in milliseconds.</summary>
    public long? Duration { get; init; }

    public CostBreakdown? Cost { get; init; }

    public RunMetrics? Metrics { get; init; }

    public bool Truncated { get; init; }

    public RouteDecision? Route { get; init; }

    public ProvenanceRef? Provenance { get; init; }

    /// <summary>Shield's monitoring of the run: coverage (with its reason), monitored time, findings and the quarantine, if any.</summary>
    public ShieldReport? Shield { get; init; }

    /// <summary>Why the run failed, was refused, cancelled or quarantined.</summary>
    public RunError? Error { get; init; }

    public DateTimeOffset? CreatedAt { get; init; }

    public DateTimeOffset? CompletedAt { get; init; }
}

/// <summary>What a run cost: provider charge, Sandstorm tier fees, and their sum (USD).</summary>
public sealed record CostBreakdown(decimal Provider, decimal Fees, decimal Total)
{
    public static CostBreakdown Zero { get; } = new(0m, 0m, 0m);
}

/// <summary>Resource usage measured by the runtime.</summary>
public sealed record RunMetrics(long CpuMs, long PeakMemoryBytes);

/// <summary>A failure with a stable code (see <see cref="Errors.ErrorCodes"/>) and a human message.</summary>
public sealed record RunError(string Code, string Message);

/// <summary>Where the signed provenance of a run lives.</summary>
public sealed record ProvenanceRef(string EnvelopeUrl, long LogIndex);

/// <summary>A routing decision: what was considered, what was chosen, and why.</summary>
public sealed record RouteDecision(RouteCandidate Chosen, IReadOnlyList<RouteCandidate> Candidates, string Reason)
{
    /// <summary>
    /// Autopilot's baseline: the predicted price of the same request on the single provider the tenant would otherwise have
    /// used (see docs/routing.md, "Autopilot's baseline"); null when that provider cannot run the request (no Autopilot fee).
    /// </summary>
    public RouteCandidate? Baseline { get; init; }
}

/// <summary>One placement the router considered, with its predictions.</summary>
public sealed record RouteCandidate(string Provider, string Runtime, string Region)
{
    public double? PredictedCostUsd { get; init; }

    public double? PredictedLatencyMs { get; init; }

    /// <summary>Predicted grams of CO₂e (energy × the region's grid intensity at that hour), when an intensity is known.</summary>
    public double? PredictedCarbonGrams { get; init; }

    /// <summary>Why this candidate was ruled out, when it was.</summary>
    public string? Rejected { get; init; }

    /// <summary>Why a feasible candidate won, or where it ranked and by how much it lost to the chosen one.</summary>
    public string? Why { get; init; }

    /// <summary>Stable key <c>provider/runtime/region</c>.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string Key => $"{Provider}/{Runtime}/{Region}";
}
