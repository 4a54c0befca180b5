using Sandstorm.Routing.Reoptimization;

namespace Sandstorm.Local;

/// <summary>
/// The local host's scheduled re-optimisation: the same <see cref="ReoptimizationJob"/> the Functions timer calls, every
/// <c>Sandstorm:Reoptimize:Schedule</c> (a TimeSpan, default 30 minutes; <c>0</c> or <c>off</c> disables it).
/// </summary>
public sealed partial class ReoptimizationService(ReoptimizationJob job, IConfiguration configuration, TimeProvider time, ILogger<ReoptimizationService> logger)
    : BackgroundService
{
    public const string ScheduleKey = "Sandstorm:Reoptimize:Schedule";

    /// <summary>The interval configured under <see cref="ScheduleKey"/>, or null when disabled.</summary>
    public static TimeSpan? Interval(IConfiguration configuration)
    {
        var value = configuration[ScheduleKey];
        if (string.IsNullOrWhiteSpace(value))
        {
            return TimeSpan.FromMinutes(30);
        }

        if (string.Equals(value, "off", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return TimeSpan.TryParse(value, System.Globalization.CultureInfo.InvariantCulture, out var interval)
            ? interval > TimeSpan.Zero ? interval : null
            : throw new InvalidOperationException($"{ScheduleKey} must be a TimeSpan such as 00:30:00 or 'off', was '{value}'");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (Interval(configuration) is not { } interval)
        {
            return;
        }

        using var timer = new PeriodicTimer(interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var report = await job.RunAsync(stoppingToken);
                LogReport(report.Summary);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The next tick tries again; a failed run leaves the current model in place.
                LogFailed(e);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Re-optimisation: {Summary}")]
    private partial void LogReport(string summary);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Re-optimisation failed; the current model stays")]
    private partial void LogFailed(Exception exception);
}
