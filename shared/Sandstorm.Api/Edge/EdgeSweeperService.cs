using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Sandstorm.Providers.Edge;

namespace Sandstorm.Api.Edge;

/// <summary>Runs the <see cref="EdgeSweeper"/> every <see cref="EdgeOptions.SweepInterval"/> on hosts with a long-lived process (the local host).</summary>
public sealed class EdgeSweeperService(EdgeSweeper sweeper, DurableTaskClient client, IOptions<EdgeOptions> options, TimeProvider time, ILogger<EdgeSweeperService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.SweepInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await sweeper.SweepAsync(client, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // A storage hiccup must not end the loop: the next tick tries again.
                    logger.LogWarning(e, "Edge sweep failed");
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
