using Cronos;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Configuration;
using Sandstorm.Routing.Reoptimization;

namespace Sandstorm.Api;

/// <summary>
/// The scheduled re-optimisation on hosts that run their own loops: the same <see cref="ReoptimizationJob"/> the Functions
/// timer calls, on the same schedule setting in the same format (<see cref="ReoptimizationSchedule"/>).
/// </summary>
public sealed partial class ReoptimizationService(ReoptimizationJob job, ReoptimizationSchedule schedule, TimeProvider time, ILogger<ReoptimizationService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (schedule.Cron is not { } cron)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            var now = time.GetUtcNow();
            if (cron.GetNextOccurrence(now, TimeZoneInfo.Utc) is not { } next)
            {
                return;
            }

            try
            {
                await Task.Delay(next - now, time, stoppingToken);
                var report = await job.RunAsync(stoppingToken);
                LogReport(report.Summary);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The next occurrence tries again; a failed run leaves the current model in place.
                LogFailed(e);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Re-optimisation: {Summary}")]
    private partial void LogReport(string summary);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Re-optimisation failed; the current model stays")]
    private partial void LogFailed(Exception exception);
}

/// <summary>
/// <c>Sandstorm:Reoptimize:Schedule</c>: an NCRONTAB expression with seconds (six fields, <c>0 */30 * * * *</c>), the format
/// of the Functions timer trigger, read the same way by every host; <c>off</c> disables it on hosts that run their own loops.
/// </summary>
public sealed record ReoptimizationSchedule(string Expression, CronExpression? Cron)
{
    public const string Key = "Sandstorm:Reoptimize:Schedule";

    public static ReoptimizationSchedule From(IConfiguration configuration)
    {
        var value = configuration[Key];
        if (string.IsNullOrWhiteSpace(value))
        {
            value = SandstormSettings.DefaultReoptimizeSchedule;
        }

        if (string.Equals(value, "off", StringComparison.OrdinalIgnoreCase))
        {
            return new ReoptimizationSchedule(value, null);
        }

        try
        {
            return new ReoptimizationSchedule(value, CronExpression.Parse(value, CronFormat.IncludeSeconds));
        }
        catch (CronFormatException e)
        {
            throw new InvalidOperationException($"{Key} must be a six-field NCRONTAB expression such as '0 */30 * * * *' (or 'off'), was '{value}': {e.Message}", e);
        }
    }
}
