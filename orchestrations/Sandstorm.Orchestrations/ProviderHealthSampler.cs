using Microsoft.Extensions.Hosting;
using Sandstorm.Providers;
using Sandstorm.Telemetry;

namespace Sandstorm.Orchestrations;

/// <summary>
/// Publishes each provider's health (breaker, failure rate, control-call latency) onto the ingestion path every
/// <see cref="Interval"/>, so the console, Shield and offline analysis read provider health from the same stream as run
/// outcomes. Does nothing when telemetry is not registered.
/// </summary>
public sealed class ProviderHealthSampler(IProviderCatalog? catalog, TimeProvider time, ITelemetrySink? sink = null) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    /// <summary>Publishes one sample per provider; returns how many.</summary>
    public int SampleOnce()
    {
        if (sink is null || catalog is null)
        {
            return 0;
        }

        var now = time.GetUtcNow();
        var n = 0;
        foreach (var p in catalog.All)
        {
            var id = p.Capabilities.Provider;
            var health = catalog.Health(id);
            sink.Publish(new TelemetryEvent
            {
                Kind = TelemetryKind.ProviderHealth,
                Time = now,
                Provider = id,
                Name = "health",
                Ok = health.Available,
                Value = health.FailureRate,
                LatencyMs = health.P50LatencyMs,
                Data = new Dictionary<string, string>
                {
                    ["p95LatencyMs"] = health.P95LatencyMs.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture),
                    ["queueDepth"] = health.QueueDepth.ToString(System.Globalization.CultureInfo.InvariantCulture),
                },
            });
            n++;
        }

        return n;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (sink is null || catalog is null)
        {
            return;
        }

        using var timer = new PeriodicTimer(Interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            SampleOnce();
        }
    }
}
