using System.Text.Json.Serialization;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Telemetry;

/// <summary>What a telemetry event reports.</summary>
public enum TelemetryKind
{
    /// <summary>A settled run: where it ran, what was predicted, what it cost and took (the learner's input).</summary>
    RunOutcome,

    /// <summary>A provider's health as the control plane saw it (latency of control calls, failure, breaker).</summary>
    ProviderHealth,

    /// <summary>A sample an edge agent sent (runtime events, usage).</summary>
    EdgeSample,
}

/// <summary>
/// One event on the ingestion path, flat so a batch of thousands serialises and parses fast (one JSON object per line).
/// Fields that do not apply to a kind stay unset and are not written.
/// </summary>
public sealed record TelemetryEvent
{
    public TelemetryKind Kind { get; init; }

    public DateTimeOffset Time { get; init; }

    /// <summary>The writer (host instance) that published it; a learner skips its own, which it observed directly.</summary>
    public string? Origin { get; init; }

    public string? RunId { get; init; }

    public string? TenantId { get; init; }

    public string? Provider { get; init; }

    public string? Runtime { get; init; }

    public string? Region { get; init; }

    // Run outcome: the workload's routing features, the prices in force, the predictions and what happened.
    public string? Language { get; init; }

    public int CodeLength { get; init; }

    public int Requirements { get; init; }

    public int Files { get; init; }

    public double Cpu { get; init; }

    public int MemoryMiB { get; init; }

    public int TimeoutMs { get; init; }

    public IsolationLevel IsolationLevel { get; init; }

    public RoutingStrategy Strategy { get; init; }

    public string? PreferredRegion { get; init; }

    public double VcpuSecond { get; init; }

    public double GibSecond { get; init; }

    public double MinimumSeconds { get; init; }

    public double GranularitySeconds { get; init; }

    public double CostUsd { get; init; }

    public double LatencyMs { get; init; }

    public bool Ok { get; init; }

    public double? PredictedCostUsd { get; init; }

    public double? PredictedLatencyMs { get; init; }

    // Provider health and edge samples.
    public string? AgentId { get; init; }

    public string? JobId { get; init; }

    public string? Name { get; init; }

    public double? Value { get; init; }

    public IReadOnlyDictionary<string, string>? Data { get; init; }
}

/// <summary>Source-generated serialisation of <see cref="TelemetryEvent"/> (no reflection on the hot path).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(TelemetryEvent))]
public sealed partial class TelemetryJson : JsonSerializerContext;
