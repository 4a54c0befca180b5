using Sandstorm.Core.Contracts;

namespace Sandstorm.Routing.Simulation;

/// <summary>
/// Provider health as the control plane sees it in a replay: latency percentiles and failure rate from the runs it made
/// itself (last 30 per provider/region, failures counted over the last hour), availability from the trace
/// (health probes see an outage at once; brownouts only show through failures).
/// </summary>
public sealed class HealthTracker
{
    private const int Window = 30;
    private readonly Dictionary<string, Queue<(DateTimeOffset Time, double LatencyMs, bool Ok)>> _runs = new(StringComparer.Ordinal);

    public void Record(string provider, string region, TraceOutcome outcome, DateTimeOffset time)
    {
        var key = CandidateEnumerator.HealthKey(provider, region);
        if (!_runs.TryGetValue(key, out var q))
        {
            _runs[key] = q = new Queue<(DateTimeOffset, double, bool)>();
        }

        q.Enqueue((time, outcome.LatencyMs, outcome.Ok));
        if (q.Count > Window)
        {
            q.Dequeue();
        }
    }

    /// <summary>Health by <c>provider/region</c> at <paramref name="now"/>, available where the trace has an outcome.</summary>
    public Dictionary<string, ProviderHealth> Snapshot(IReadOnlyList<ProviderCapabilities> providers, IReadOnlyDictionary<string, TraceOutcome> outcomes, DateTimeOffset now)
    {
        var up = new HashSet<string>(StringComparer.Ordinal);
        foreach (var key in outcomes.Keys)
        {
            var parts = key.Split('/');
            up.Add(CandidateEnumerator.HealthKey(parts[0], parts[2]));
        }

        var result = new Dictionary<string, ProviderHealth>(StringComparer.Ordinal);
        foreach (var p in providers)
        {
            foreach (var region in p.Regions)
            {
                var key = CandidateEnumerator.HealthKey(p.Provider, region);
                var health = new ProviderHealth { Available = up.Contains(key) };
                if (_runs.TryGetValue(key, out var q) && q.Count > 0)
                {
                    var latencies = q.Select(x => x.LatencyMs).Order().ToList();
                    var recent = q.Where(x => now - x.Time < TimeSpan.FromHours(1)).ToList();
                    health = health with
                    {
                        P50LatencyMs = latencies[latencies.Count / 2],
                        P95LatencyMs = latencies[Math.Min(latencies.Count - 1, (int)(latencies.Count * 0.95))],
                        FailureRate = recent.Count == 0 ? 0 : recent.Count(x => !x.Ok) / (double)recent.Count,
                    };
                }

                result[key] = health;
            }
        }

        return result;
    }
}
