using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Routing;
using Sandstorm.Routing.Learning;

namespace Sandstorm.Telemetry;

/// <summary>Run outcomes as telemetry events and back.</summary>
public static class RunOutcomes
{
    public static TelemetryEvent ToEvent(RoutingObservation o, string origin) => new()
    {
        Kind = TelemetryKind.RunOutcome,
        Time = o.Time,
        Origin = origin,
        RunId = o.RunId,
        Provider = o.Route.Provider,
        Runtime = o.Route.Runtime,
        Region = o.Route.Region,
        Language = o.Workload.Language,
        CodeLength = o.Workload.CodeLength,
        Requirements = o.Workload.Requirements,
        Files = o.Workload.Files,
        Cpu = o.Workload.Cpu,
        MemoryMiB = o.Workload.MemoryMiB,
        TimeoutMs = o.Workload.TimeoutMs,
        IsolationLevel = o.Workload.IsolationLevel,
        Strategy = o.Workload.Strategy,
        PreferredRegion = o.Workload.Constraints?.PreferredRegion,
        VcpuSecond = o.Price.VcpuSecond,
        GibSecond = o.Price.GibSecond,
        MinimumSeconds = o.Price.MinimumSeconds,
        GranularitySeconds = o.Price.GranularitySeconds,
        CostUsd = o.CostUsd,
        LatencyMs = o.LatencyMs,
        Ok = o.Ok,
        PredictedCostUsd = o.PredictedCostUsd,
        PredictedLatencyMs = o.PredictedLatencyMs,
    };

    public static RoutingObservation ToObservation(TelemetryEvent e) => new()
    {
        RunId = e.RunId ?? "",
        Time = e.Time,
        Workload = new Workload
        {
            Language = e.Language ?? "",
            CodeLength = e.CodeLength,
            Requirements = e.Requirements,
            Files = e.Files,
            Cpu = e.Cpu,
            MemoryMiB = e.MemoryMiB,
            TimeoutMs = e.TimeoutMs,
            IsolationLevel = e.IsolationLevel,
            Strategy = e.Strategy,
            Constraints = e.PreferredRegion is null ? null : new RunConstraints { PreferredRegion = e.PreferredRegion },
        },
        Route = new RouteCandidate(e.Provider ?? "", e.Runtime ?? "", e.Region ?? ""),
        RuntimeIsolation = e.IsolationLevel,
        Price = new PriceSheet { VcpuSecond = e.VcpuSecond, GibSecond = e.GibSecond, MinimumSeconds = e.MinimumSeconds, GranularitySeconds = e.GranularitySeconds },
        CostUsd = e.CostUsd,
        LatencyMs = e.LatencyMs,
        Ok = e.Ok,
        PredictedCostUsd = e.PredictedCostUsd,
        PredictedLatencyMs = e.PredictedLatencyMs,
    };
}

/// <summary>
/// The learner Settle calls when telemetry is on: the local router learns at once, and the outcome goes onto the ingestion
/// path, from which every other instance's router learns it (<see cref="TelemetryLearnerFeed"/>) and the re-optimisation
/// retrains (<see cref="TelemetryObservationSource"/>).
/// </summary>
public sealed class PublishingRoutingLearner(LightGbmRouter router, ITelemetrySink sink, TelemetryWriterId writer) : IRoutingLearner
{
    public void Observe(RoutingObservation observation)
    {
        router.Observe(observation);
        sink.Publish(RunOutcomes.ToEvent(observation, writer.Value));
    }
}

/// <summary>This process's name on the ingestion path (one blob per writer).</summary>
public sealed record TelemetryWriterId(string Value);

/// <summary>Feeds the router the run outcomes other instances published (its own it observed directly).</summary>
public sealed partial class TelemetryLearnerFeed(TelemetryTail tail, LightGbmRouter router, TelemetryOptions options, TimeProvider time, ILogger<TelemetryLearnerFeed> logger) : BackgroundService
{
    /// <summary>Observations absorbed so far.</summary>
    public long Observed { get; private set; }

    /// <summary>Reads what arrived since the last poll into the router; returns how many outcomes it learnt from.</summary>
    public async Task<int> PollOnceAsync(CancellationToken cancellationToken)
    {
        var n = 0;
        foreach (var e in await tail.PollAsync(cancellationToken))
        {
            if (e.Kind == TelemetryKind.RunOutcome)
            {
                router.Observe(RunOutcomes.ToObservation(e));
                n++;
            }
        }

        Observed += n;
        return n;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await tail.SkipExistingAsync(stoppingToken);
        using var timer = new PeriodicTimer(options.TailInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await PollOnceAsync(stoppingToken);
            }
            catch (Azure.RequestFailedException e)
            {
                LogPollFailed(logger, e);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reading other instances' run outcomes failed; retrying at the next poll")]
    private static partial void LogPollFailed(ILogger logger, Exception e);
}

/// <summary>The re-optimisation's training data: the run outcomes on the ingestion path (the same stream the learner reads).</summary>
public sealed class TelemetryObservationSource(ITelemetryLog log) : IRoutingObservationSource
{
    public async Task<IReadOnlyList<RoutingObservation>> GetObservationsAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        var list = new List<RoutingObservation>();
        await foreach (var e in log.ReadAsync(from, to, cancellationToken))
        {
            if (e.Kind == TelemetryKind.RunOutcome && e.Provider is { Length: > 0 } && e.Cpu > 0 && e.LatencyMs > 0)
            {
                list.Add(RunOutcomes.ToObservation(e));
            }
        }

        list.Sort((a, b) => a.Time.CompareTo(b.Time));
        return list;
    }
}
