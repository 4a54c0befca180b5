using OpenTelemetry.Metrics;

namespace Sandstorm.Testing;

/// <summary>One collection of metrics (from the OpenTelemetry in-memory exporter), read by name and tags.</summary>
public sealed class MetricReadings(IReadOnlyList<MetricSnapshot> metrics)
{
    /// <summary>Sum of a long counter over the points whose tags include all of <paramref name="tags"/>.</summary>
    public long Sum(string name, IReadOnlyDictionary<string, object?> tags, params (string Key, object? Value)[] more) =>
        Points(name, With(tags, more)).Sum(p => p.GetSumLong());

    public double SumDouble(string name, IReadOnlyDictionary<string, object?> tags, params (string Key, object? Value)[] more) =>
        Points(name, With(tags, more)).Sum(p => p.GetSumDouble());

    /// <summary>How many values a histogram recorded over the matching points.</summary>
    public long HistogramCount(string name, IReadOnlyDictionary<string, object?> tags, params (string Key, object? Value)[] more) =>
        Points(name, With(tags, more)).Sum(p => p.GetHistogramCount());

    /// <summary>The value of the one matching point of a long gauge; null when none matches.</summary>
    public long? Gauge(string name, params (string Key, object? Value)[] tags) =>
        Points(name, With(new Dictionary<string, object?>(), tags)) is [var point] ? point.GetGaugeLastValueLong() : null;

    public IReadOnlyList<MetricPoint> Points(string name, IReadOnlyDictionary<string, object?> tags)
    {
        var points = new List<MetricPoint>();
        foreach (var metric in metrics.Where(m => m.Name == name))
        {
            foreach (var point in metric.MetricPoints)
            {
                var pointTags = new Dictionary<string, object?>();
                foreach (var tag in point.Tags)
                {
                    pointTags[tag.Key] = tag.Value;
                }

                if (tags.All(t => pointTags.TryGetValue(t.Key, out var v) && Equals(v, t.Value)))
                {
                    points.Add(point);
                }
            }
        }

        return points;
    }

    private static Dictionary<string, object?> With(IReadOnlyDictionary<string, object?> tags, (string Key, object? Value)[] more)
    {
        var all = new Dictionary<string, object?>(tags);
        foreach (var (key, value) in more)
        {
            all[key] = value;
        }

        return all;
    }
}
