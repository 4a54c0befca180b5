using Sandstorm.Shield;

namespace Sandstorm.Shield.Tests;

public sealed class ForkRateTrackerTests
{
    private const long Ms = 1_000_000;

    [Fact]
    public void Add_CountsOverTheWindowAndReportsOncePerWindow()
    {
        var tracker = new ForkRateTracker(TimeSpan.FromSeconds(1), floor: 100);

        Assert.Null(tracker.Add("s1", 60, 0, Events.At));
        var storm = tracker.Add("s1", 60, 200 * Ms, Events.At);
        Assert.NotNull(storm);
        Assert.Equal("120", storm.Args!["count"]);
        Assert.Equal("fork_storm", storm.Type);
        Assert.Equal("s1", storm.SandboxId);

        // Still above the floor within the same window: no second event yet.
        Assert.Null(tracker.Add("s1", 500, 400 * Ms, Events.At));
        Assert.Equal("500", tracker.Add("s1", 0, 1300 * Ms, Events.At)?.Args!["count"]);
    }

    [Fact]
    public void Add_OldSamplesLeaveTheWindow()
    {
        var tracker = new ForkRateTracker(TimeSpan.FromSeconds(1), floor: 100);

        Assert.Null(tracker.Add("s1", 90, 0, Events.At));
        Assert.Null(tracker.Add("s1", 90, 1500 * Ms, Events.At));
        Assert.Null(tracker.Add("s2", 90, 1500 * Ms, Events.At));
    }
}
