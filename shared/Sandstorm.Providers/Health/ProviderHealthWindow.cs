using Polly.CircuitBreaker;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Providers.Health;

/// <summary>
/// A small rolling window of recent calls to one provider (latency and outcome) plus the state of its circuit breaker.
/// Small on purpose: the router wants "how is it doing now", not history.
/// </summary>
public sealed class ProviderHealthWindow
{
    private readonly TimeProvider _time;
    private readonly int _capacity;
    private readonly TimeSpan _maxAge;
    private readonly Sample[] _samples;
    private readonly Lock _gate = new();
    private int _next;
    private int _count;

    public ProviderHealthWindow(TimeProvider time, int capacity = 64, TimeSpan? maxAge = null)
    {
        _time = time;
        _capacity = capacity;
        _maxAge = maxAge ?? TimeSpan.FromMinutes(10);
        _samples = new Sample[capacity];
    }

    /// <summary>The provider pipeline's breaker; set when the pipeline is built.</summary>
    public CircuitBreakerStateProvider? Breaker { get; set; }

    /// <summary>The per-tenant breakers of the provider; set when the pipeline is built.</summary>
    public Resilience.TenantBreakers? Tenants { get; set; }

    /// <summary>Records one call. <paramref name="latency"/> is null for calls whose duration is the user's code, not the provider.</summary>
    public void Record(TimeSpan? latency, bool success)
    {
        lock (_gate)
        {
            _samples[_next] = new Sample(_time.GetUtcNow(), latency?.TotalMilliseconds, success);
            _next = (_next + 1) % _capacity;
            _count = Math.Min(_count + 1, _capacity);
        }
    }

    public ProviderHealth Snapshot()
    {
        var cutoff = _time.GetUtcNow() - _maxAge;
        Sample[] recent;
        lock (_gate)
        {
            recent = _samples.Take(_count).Where(s => s.At >= cutoff).ToArray();
        }

        // Open or isolated circuit: calls fail fast, so the router must not place runs here.
        // Half-open lets a probe through, so the provider counts as available again.
        var state = Breaker?.CircuitState ?? CircuitState.Closed;
        var available = state is not (CircuitState.Open or CircuitState.Isolated);
        if (recent.Length == 0)
        {
            return new ProviderHealth { Available = available };
        }

        var latencies = recent.Where(s => s.LatencyMs is not null).Select(s => s.LatencyMs!.Value).Order().ToArray();
        return new ProviderHealth
        {
            Available = available,
            P50LatencyMs = latencies.Length == 0 ? 0 : Percentile(latencies, 0.50),
            P95LatencyMs = latencies.Length == 0 ? 0 : Percentile(latencies, 0.95),
            FailureRate = recent.Count(s => !s.Success) / (double)recent.Length,
        };
    }

    /// <summary>The provider's health as one tenant sees it: unavailable to it also while its own circuit is open.</summary>
    public ProviderHealth Snapshot(string tenant)
    {
        var health = Snapshot();
        return Tenants?.State(tenant) is CircuitState.Open or CircuitState.Isolated ? health with { Available = false } : health;
    }

    private static double Percentile(double[] sorted, double p)
    {
        // Nearest-rank: a real observed latency, no interpolation between few samples.
        var rank = (int)Math.Ceiling(p * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    private readonly record struct Sample(DateTimeOffset At, double? LatencyMs, bool Success);
}
