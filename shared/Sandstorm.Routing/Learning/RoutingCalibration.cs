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

    /// <summary>Number of corrections held (one per candidate and one per candidate and band).</summary>
    public int Count => _entries.Count;

    /// <summary>
    /// Learns from one successful run: its actual cost and latency against what was predicted for it (uncalibrated), in the
    /// latency band of that prediction (<see cref="ResidualSpreads.Band"/>).
    /// </summary>
    public void Observe(string candidateKey, int band, DateTimeOffset time, double logCostResidual, double logLatencyResidual)
    {
        var cost = Math.Clamp(logCostResidual, -Clip, Clip);
        var latency = Math.Clamp(logLatencyResidual, -Clip, Clip);
        Add(candidateKey, time, cost, latency);
        Add(ResidualSpreads.Key(candidateKey, band), time, cost, latency);
    }

    /// <summary>
    /// Log corrections (cost, latency) to add to a candidate's predictions in a latency band at <paramref name="now"/>; zero when
    /// unknown. The candidate's own residuals shrink towards zero, its band's towards the candidate's: a host that is slow on
    /// everything shows it on every band at once, while a billing minimum that only matters to short runs stays in their band.
    /// </summary>
    public (double Cost, double Latency) Correction(string candidateKey, int band, DateTimeOffset now)
    {
        if (!_entries.TryGetValue(candidateKey, out var e))
        {
            return (0, 0);
        }

        // Shrink towards zero by the (decayed) evidence: two runs say little, twenty recent ones say a lot.
        var f = Decay(e.Time, now);
        var denominator = (e.Weight * f) + shrinkage;
        var (cost, latency) = (e.Cost * f / denominator, e.Latency * f / denominator);
        if (!_entries.TryGetValue(ResidualSpreads.Key(candidateKey, band), out var b))
        {
            return (cost, latency);
        }

        var g = Decay(b.Time, now);
        var weight = (b.Weight * g) + shrinkage;
        return (((b.Cost * g) + (shrinkage * cost)) / weight, ((b.Latency * g) + (shrinkage * latency)) / weight);
    }

    private void Add(string key, DateTimeOffset time, double cost, double latency) =>
        _entries.AddOrUpdate(
            key,
            static (_, a) => new Entry(a.cost, a.latency, 1, a.time),
            static (_, e, a) =>
            {
                var f = a.self.Decay(e.Time, a.time);
                return new Entry((e.Cost * f) + a.cost, (e.Latency * f) + a.latency, (e.Weight * f) + 1, a.time > e.Time ? a.time : e.Time);
            },
            (cost, latency, time, self: this));

    /// <summary>Forgets the residuals (a new model has absorbed what they said about the old one); failure rates are kept.</summary>
    public void Reset() => _entries.Clear();

    /// <summary>Records whether a run on <paramref name="healthKey"/> (<c>provider/region</c>) succeeded.</summary>
    public void ObserveOutcome(string healthKey, DateTimeOffset time, bool ok) =>
        _failures.AddOrUpdate(
            healthKey,
            static (_, a) => new Entry(a.ok ? 0 : 1, 0, 1, a.time),
            static (_, e, a) =>
            {
                var f = a.self.Decay(e.Time, a.time);
                return new Entry((e.Cost * f) + (a.ok ? 0 : 1), 0, (e.Weight * f) + 1, a.time > e.Time ? a.time : e.Time);
            },
            (ok, time, self: this));

    /// <summary>
    /// Recency-weighted failure rate of the runs on <paramref name="healthKey"/>, shrunk towards 1 % by 20 pseudo-runs so a
    /// single failure does not condemn a region; 0 when nothing was seen.
    /// </summary>
    public double FailureRate(string healthKey, DateTimeOffset now)
    {
        if (!_failures.TryGetValue(healthKey, out var e))
        {
            return 0;
        }

        var f = Decay(e.Time, now);
        return ((e.Cost * f) + (20 * 0.01)) / ((e.Weight * f) + 20);
    }

    private readonly ConcurrentDictionary<string, Entry> _failures = new(StringComparer.Ordinal);

    private double Decay(DateTimeOffset from, DateTimeOffset to) =>
        to <= from || halfLife <= TimeSpan.Zero ? 1 : Math.Pow(0.5, (to - from) / halfLife);

    private sealed record Entry(double Cost, double Latency, double Weight, DateTimeOffset Time);
}
