using System.Collections.Concurrent;

namespace Sandstorm.Routing.Learning;

/// <summary>
/// Online per-candidate correction of both heads between retrains: a recency-weighted mean of the log residuals
/// (actual − predicted) of the runs each candidate served. The trees learn the average of a 14-day window; load swings,
/// brownouts and a region the prior misjudges show up here within a few runs and fade when they stop being seen.
/// Residuals are relative (log), so a snippet and a batch job on the same slow host say the same thing.
/// </summary>
public sealed class RoutingCalibration(TimeSpan halfLife, double shrinkage)
{
    /// <summary>Residuals beyond this (log units) are clipped: one cold start on a 1-second run must not condemn a host.</summary>
    private const double Clip = 1.0;

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <summary>Settings from <see cref="RoutingOptions"/>.</summary>
    public RoutingCalibration(RoutingOptions options)
        : this(options.CalibrationHalfLife, options.CalibrationShrinkage)
    {
    }

    /// <summary>Number of candidates with a correction.</summary>
    public int Count => _entries.Count;

    /// <summary>Learns from one successful run: its actual cost and latency against what was predicted for it (uncalibrated).</summary>
    public void Observe(string candidateKey, DateTimeOffset time, double logCostResidual, double logLatencyResidual)
    {
        var cost = Math.Clamp(logCostResidual, -Clip, Clip);
        var latency = Math.Clamp(logLatencyResidual, -Clip, Clip);
        _entries.AddOrUpdate(
            candidateKey,
            static (_, a) => new Entry(a.cost, a.latency, 1, a.time),
            static (_, e, a) =>
            {
                var f = a.self.Decay(e.Time, a.time);
                return new Entry((e.Cost * f) + a.cost, (e.Latency * f) + a.latency, (e.Weight * f) + 1, a.time > e.Time ? a.time : e.Time);
            },
            (cost, latency, time, self: this));
    }

    /// <summary>Log corrections (cost, latency) to add to a candidate's predictions at <paramref name="now"/>; zero when unknown.</summary>
    public (double Cost, double Latency) Correction(string candidateKey, DateTimeOffset now)
    {
        if (!_entries.TryGetValue(candidateKey, out var e))
        {
            return (0, 0);
        }

        // Shrink towards zero by the (decayed) evidence: two runs say little, twenty recent ones say a lot.
        var f = Decay(e.Time, now);
        var denominator = (e.Weight * f) + shrinkage;
        return (e.Cost * f / denominator, e.Latency * f / denominator);
    }

    /// <summary>Forgets everything (a new model has absorbed what the residuals said about the old one).</summary>
    public void Reset() => _entries.Clear();

    private double Decay(DateTimeOffset from, DateTimeOffset to) =>
        to <= from || halfLife <= TimeSpan.Zero ? 1 : Math.Pow(0.5, (to - from) / halfLife);

    private sealed record Entry(double Cost, double Latency, double Weight, DateTimeOffset Time);
}
