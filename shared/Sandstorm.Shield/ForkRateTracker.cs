namespace Sandstorm.Shield;

/// <summary>
/// Turns counts of process creations into a derived <c>fork_storm</c> event: the monitor reports how many forks each
/// sandbox attempted per interval; when the sum over the trailing window reaches <see cref="Floor"/>, one event is
/// emitted (at most one per window per sandbox) with <c>evt.arg.count</c> (forks in the window) and
/// <c>evt.arg.window_ms</c>. The threshold proper is the rule's (<c>evt.arg.count &gt;= N</c>); the floor only keeps
/// ordinary process use from producing events at all.
/// </summary>
public sealed class ForkRateTracker(TimeSpan window, int floor)
{
    private readonly Dictionary<string, State> sandboxes = new(StringComparer.Ordinal);
    private readonly Lock gate = new();

    public TimeSpan Window { get; } = window;

    public int Floor { get; } = floor;

    /// <summary>Records <paramref name="count"/> forks seen at <paramref name="monotonicNs"/>; returns the derived event, if any.</summary>
    public ShieldEvent? Add(string sandboxId, long count, long monotonicNs, DateTimeOffset time)
    {
        var windowNs = (long)(Window.TotalMilliseconds * 1_000_000);
        lock (gate)
        {
            if (!sandboxes.TryGetValue(sandboxId, out var state))
            {
                sandboxes[sandboxId] = state = new State();
            }

            state.Samples.Enqueue((monotonicNs, count));
            state.Total += count;
            while (state.Samples.Count > 0 && state.Samples.Peek().At <= monotonicNs - windowNs)
            {
                state.Total -= state.Samples.Dequeue().Count;
            }

            if (state.Total < Floor || monotonicNs - state.LastReport < windowNs)
            {
                return null;
            }

            state.LastReport = monotonicNs;
            return new ShieldEvent
            {
                Type = "fork_storm",
                Time = time,
                MonotonicTimestamp = monotonicNs,
                SandboxId = sandboxId,
                Source = "derived",
                Args = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["count"] = state.Total.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["window_ms"] = ((long)Window.TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture),
                },
            };
        }
    }

    /// <summary>Forgets a sandbox (at clean-up).</summary>
    public void Remove(string sandboxId)
    {
        lock (gate)
        {
            sandboxes.Remove(sandboxId);
        }
    }

    private sealed class State
    {
        public Queue<(long At, long Count)> Samples { get; } = new();

        public long Total { get; set; }

        public long LastReport { get; set; } = long.MinValue / 2;
    }
}
