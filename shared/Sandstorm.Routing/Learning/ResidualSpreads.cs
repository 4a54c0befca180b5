namespace Sandstorm.Routing.Learning;

/// <summary>Standard deviation of the log residuals (actual − predicted) of both heads over <see cref="Count"/> settled runs.</summary>
public sealed record ResidualSpread(double CostSd, double LatencySd, int Count);

/// <summary>
/// How uncertain a prediction is, per candidate and per latency band. The heads predict a log, so the exponential of a
/// prediction is a median, not a mean: a candidate whose runs scatter widely (a noisy host, a queue that spikes) costs and
/// takes more on average than its median says, and one whose billing minimum flattens the spread does not. The expected
/// value exp(μ + σ²/2) is what totals add up, and the upper quantile exp(μ + z·σ) is what a constraint has to hold for.
/// Spreads differ by run length (a 60 s billing minimum makes short runs on the edge cost exactly the same), hence the bands.
/// </summary>
public static class ResidualSpreads
{
    /// <summary>Pseudo-runs of the band's pooled spread each candidate's own spread starts from.</summary>
    public const double Shrinkage = 20;

    /// <summary>Residuals beyond this (log units) are clipped, so one run killed at its timeout does not swamp a band.</summary>
    public const double Clip = 2.0;

    /// <summary>Spread assumed when neither the candidate nor its band has any settled run.</summary>
    public static ResidualSpread Default { get; } = new(0.3, 0.3, 0);

    /// <summary>Highest band number.</summary>
    public const int MaxBand = 2;

    /// <summary>Latency band of a prediction: under 10 s, under 100 s, longer.</summary>
    public static int Band(double predictedLatencyMs) => predictedLatencyMs switch
    {
        < 10_000 => 0,
        < 100_000 => 1,
        _ => 2,
    };

    /// <summary>Key of a candidate's band; candidate <c>*</c> is the band pooled over all candidates.</summary>
    public static string Key(string candidateKey, int band) => $"{candidateKey}#{band}";

    /// <summary>Per-band pooled spreads and per-candidate spreads shrunk towards them, from successful runs' residuals.</summary>
    public static Dictionary<string, ResidualSpread> Compute(IReadOnlyList<(string Candidate, int Band, double Cost, double Latency)> residuals)
    {
        var result = new Dictionary<string, ResidualSpread>(StringComparer.Ordinal);
        foreach (var band in residuals.GroupBy(r => r.Band))
        {
            var pooled = Spread(band.ToList());
            result[Key("*", band.Key)] = pooled;
            foreach (var candidate in band.GroupBy(r => r.Candidate, StringComparer.Ordinal))
            {
                var own = Spread(candidate.ToList());
                var n = own.Count;
                result[Key(candidate.Key, band.Key)] = new ResidualSpread(
                    Shrink(own.CostSd, pooled.CostSd, n), Shrink(own.LatencySd, pooled.LatencySd, n), n);
            }
        }

        return result;
    }

    /// <summary>The spread of a candidate in a band: its own, else the band's pooled one, else <see cref="Default"/>.</summary>
    public static ResidualSpread Lookup(IReadOnlyDictionary<string, ResidualSpread> spreads, string candidateKey, int band) =>
        spreads.GetValueOrDefault(Key(candidateKey, band)) ?? spreads.GetValueOrDefault(Key("*", band)) ?? Default;

    private static double Shrink(double own, double pooled, int n) =>
        Math.Sqrt(((n * own * own) + (Shrinkage * pooled * pooled)) / (n + Shrinkage));

    private static ResidualSpread Spread(List<(string Candidate, int Band, double Cost, double Latency)> rows)
    {
        if (rows.Count < 2)
        {
            return rows.Count == 0 ? Default : Default with { Count = rows.Count };
        }

        return new ResidualSpread(Sd(rows.Select(r => r.Cost)), Sd(rows.Select(r => r.Latency)), rows.Count);
    }

    private static double Sd(IEnumerable<double> values)
    {
        var v = values.Select(x => Math.Clamp(x, -Clip, Clip)).ToList();
        var mean = v.Average();
        return Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1));
    }
}
