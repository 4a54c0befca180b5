using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sandstorm.Routing.Reoptimization;

namespace Sandstorm.Functions;

/// <summary>The scheduled cost re-optimisation (retrain, compare, promote, refresh prices); the local host runs the same job on an interval.</summary>
public static class ReoptimizeFunction
{
    /// <summary>CRON schedule from the app setting <c>Sandstorm__Reoptimize__Schedule</c> (e.g. <c>0 */30 * * * *</c>).</summary>
    [Function("Reoptimize")]
    public static async Task Reoptimize([TimerTrigger("%Sandstorm__Reoptimize__Schedule%")] TimerInfo timer, FunctionContext context)
    {
        var job = context.InstanceServices.GetRequiredService<ReoptimizationJob>();
        var report = await job.RunAsync(context.CancellationToken);
        context.GetLogger(nameof(ReoptimizeFunction)).LogInformation("Re-optimisation: {Summary}", report.Summary);
    }
}
