using System.Diagnostics;

namespace Sandstorm.Testing;

/// <summary>Waits for a condition by polling with a deadline (tests never sleep to wait).</summary>
public static class Poll
{
    public static async Task<T> UntilAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        T last;
        do
        {
            last = await probe();
            if (done(last))
            {
                return last;
            }

            await Task.Delay(25);
        }
        while (clock.Elapsed < timeout);

        throw new TimeoutException($"timed out after {timeout.TotalSeconds:0.#} s waiting for {what}; last value: {last}");
    }
}
