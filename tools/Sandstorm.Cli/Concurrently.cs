namespace Sandstorm.Cli;

/// <summary>Work spread over a fixed number of workers, for the benchmarks.</summary>
public static class Concurrently
{
    /// <summary>Calls <paramref name="action"/> for 0 … <paramref name="count"/> − 1, at most <paramref name="concurrency"/> at a time.</summary>
    public static async Task ForEachAsync(int count, int concurrency, Func<int, Task> action)
    {
        var next = -1;
        var workers = Enumerable.Range(0, Math.Max(1, concurrency)).Select(async _ =>
        {
            for (var i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
            {
                await action(i);
            }
        });
        await Task.WhenAll(workers);
    }
}
