using Sandstorm.Core.Contracts;

namespace Sandstorm.Routing.Learning;

/// <summary>
/// Turns a workload and one placement into the fixed-length feature vector both model heads read.
/// Identities (language, provider, runtime, region) are stable hashes in [0, 1): trees isolate a value with two splits,
/// and a new provider or region needs no vocabulary change (the prior covers it until it has data).
/// </summary>
public static class RoutingFeatures
{
    /// <summary>Length of the vector; bump <see cref="SchemaVersion"/> whenever the layout changes.</summary>
    public const int Count = 25;

    /// <summary>Stored with each model so a model trained on another layout is never scored.</summary>
    public const int SchemaVersion = 3;

    /// <summary>Names of the slots, in order (for reports and debugging).</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "language", "logCodeLength", "requirements", "files", "cpu", "memoryGiB", "timeoutS", "isolationLevel", "stateful",
        "provider", "runtime", "region", "candidate", "runtimeIsolation",
        "vcpuSecondMicroUsd", "gibSecondMicroUsd", "pricePerSecondMicroUsd", "minimumSeconds", "granularitySeconds",
        "failureRate", "available", "queueDepth",
        "hourOfDay", "dayOfWeek", "callerRttMs",
    ];

    /// <summary>Features of a feasible candidate for a workload at a moment.</summary>
    public static float[] Extract(Workload workload, Candidate candidate, DateTimeOffset now) =>
        Extract(workload, candidate.Route, candidate.Runtime.Isolation, candidate.Provider.Price, candidate.Health, now);

    /// <summary>Features of a settled run (what the ledger recorded at decision time).</summary>
    public static float[] Extract(RoutingObservation observation) =>
        Extract(observation.Workload, observation.Route, observation.RuntimeIsolation, observation.Price, observation.Health, observation.Time);

    /// <summary>Features from their parts; the one place the layout is defined.</summary>
    public static float[] Extract(
        Workload w,
        RouteCandidate route,
        IsolationLevel runtimeIsolation,
        PriceSheet price,
        ProviderHealth health,
        DateTimeOffset now)
    {
        var f = new float[Count];
        f[0] = Hash(w.Language);
        f[1] = (float)Math.Log(1 + Math.Max(0, w.CodeLength));
        f[2] = w.Requirements;
        f[3] = w.Files;
        f[4] = (float)w.Cpu;
        f[5] = w.MemoryMiB / 1024f;
        f[6] = w.TimeoutMs / 1000f;
        f[7] = (float)w.IsolationLevel;
        f[8] = w.Stateful ? 1 : 0;
        f[9] = Hash(route.Provider);
        f[10] = Hash(route.Runtime);
        f[11] = Hash(route.Region);
        f[12] = Hash(route.Key);
        f[13] = (float)runtimeIsolation;
        f[14] = (float)(price.VcpuSecond * 1e6);
        f[15] = (float)(price.GibSecond * 1e6);
        f[16] = (float)(PricePerSecond(price, w) * 1e6);
        f[17] = (float)price.MinimumSeconds;
        f[18] = (float)price.GranularitySeconds;
        // No recent p50/p95 latency: they describe the mix of runs the router happened to send to a provider (snippets
        // make it look fast), and trees learnt to send batch jobs wherever snippets had gone. Relative slowness is learnt
        // per candidate by RoutingCalibration instead.
        f[19] = (float)health.FailureRate;
        f[20] = health.Available ? 1 : 0;
        f[21] = health.QueueDepth;
        var utc = now.ToUniversalTime();
        f[22] = utc.Hour + (utc.Minute / 60f);
        f[23] = (float)utc.DayOfWeek;
        // How far the candidate is from the caller (constraints.preferredRegion): what the hop costs a run is learnt from here.
        f[24] = (float)CallerRoundTripMs(w, route.Region);
        return f;
    }

    /// <summary>Estimated round trip between the caller's preferred region and <paramref name="region"/> (0 without a preference).</summary>
    public static double CallerRoundTripMs(Workload w, string region) =>
        Regions.RegionCatalog.Default.RoundTripMs(w.Constraints?.PreferredRegion, region);

    /// <summary>List price per second of the workload's resources (USD): the unit the cost head predicts in.</summary>
    public static double PricePerSecond(PriceSheet price, Workload w) =>
        (w.Cpu * price.VcpuSecond) + (w.MemoryMiB / 1024.0 * price.GibSecond);

    /// <summary>FNV-1a over the UTF-16 code units, folded to [0, 1); stable across processes (string.GetHashCode is not).</summary>
    public static float Hash(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return 0;
        }

        var h = 2166136261u;
        foreach (var c in value)
        {
            h = (h ^ c) * 16777619u;
        }

        return (h % 1_000_003u) / 1_000_003f;
    }
}
