using Microsoft.Extensions.Logging;

namespace Sandstorm.Api.Observability;

/// <summary>
/// A value an observable gauge reports but that takes I/O to read (a queue's depth, a table count). Gauge callbacks are
/// synchronous and run on the exporter's thread, so they never wait: each returns the last reading and, when it is older
/// than <c>maxAge</c>, starts one refresh in the background. A reading older than <see cref="Expiry"/> is not reported
/// (the store is unreachable), rather than reported as if it were current.
/// </summary>
internal sealed class GaugeReading<T>(string what, Func<CancellationToken, Task<T>> read, TimeSpan maxAge, TimeProvider time, ILogger logger)
{
    /// <summary>Longest a reading is reported for while refreshes keep failing.</summary>
    public static readonly TimeSpan Expiry = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(10);

    private Reading? _last;
    private int _refreshing;

    /// <summary>The last reading, if there is a fresh enough one; starts a refresh when it is stale.</summary>
    public bool TryGet(out T value)
    {
        var last = Volatile.Read(ref _last);
        var now = time.GetUtcNow();
        if ((last is null || now - last.At >= maxAge) && Interlocked.CompareExchange(ref _refreshing, 1, 0) == 0)
        {
            _ = Task.Run(RefreshAsync);
        }

        var fresh = last is not null && now - last.At < Expiry;
        value = fresh ? last!.Value : default!;
        return fresh;
    }

    private async Task RefreshAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(ReadTimeout, time);
            var value = await read(timeout.Token);
            Volatile.Write(ref _last, new Reading(value, time.GetUtcNow()));
        }
        catch (Exception e)
        {
            // A gauge must never take the exporter down: the reading just stays old until the store answers.
            logger.LogWarning(e, "Could not read {Gauge} for its gauge: {Message}", what, e.Message);
        }
        finally
        {
            Volatile.Write(ref _refreshing, 0);
        }
    }

    private sealed record Reading(T Value, DateTimeOffset At);
}
