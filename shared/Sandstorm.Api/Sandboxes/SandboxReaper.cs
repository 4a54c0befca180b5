using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Orchestrations.Sandboxes;
using Sandstorm.Providers;
using Sandstorm.Storage.Sandboxes;

namespace Sandstorm.Api.Sandboxes;

/// <summary>
/// Finds kept sandboxes whose host or agent died — the record says running but the provider no longer holds them — and
/// records them <c>lost</c> (their lifecycle ends them and bills their life up to then); they are never recreated empty.
/// A sandbox stuck starting (its creator died mid-create) ends as failed. Runs at start and then every <see cref="Interval"/>.
/// </summary>
public sealed class SandboxReaper(SandboxStore store, IProviderCatalog catalog, SandboxService sandboxes, TimeProvider time)
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    /// <summary>How long a sandbox may stay starting before it is taken for abandoned.</summary>
    public static readonly TimeSpan StartingLimit = TimeSpan.FromMinutes(2);

    /// <summary>One sweep; returns how many sandboxes it ended.</summary>
    public async Task<int> SweepAsync(DurableTaskClient client, CancellationToken cancellationToken)
    {
        var ended = 0;
        foreach (var keeper in catalog.All.OfType<ISandboxKeeper>())
        {
            var provider = ((ISandboxProvider)keeper).Capabilities.Provider;
            await foreach (var record in store.LiveOnAsync(provider, cancellationToken))
            {
                if (record.Status == SandboxStatus.Starting)
                {
                    if (time.GetUtcNow() - record.CreatedAt > StartingLimit)
                    {
                        await client.RaiseEventAsync(record.SandboxId, SandboxEvents.End, SandboxStatus.Failed, cancellationToken);
                        ended++;
                    }

                    continue;
                }

                if (EndSandboxActivity.LeaseOf(record) is { } lease && await keeper.GetSessionAsync(lease, cancellationToken) is null)
                {
                    await sandboxes.MarkLostAsync(client, record, cancellationToken);
                    ended++;
                }
            }
        }

        return ended;
    }
}

/// <summary>Runs the <see cref="SandboxReaper"/> on hosts with a long-lived process (the local host).</summary>
public sealed class SandboxReaperService(SandboxReaper reaper, DurableTaskClient client, TimeProvider time, ILogger<SandboxReaperService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var ended = await reaper.SweepAsync(client, stoppingToken);
                if (ended > 0)
                {
                    logger.LogWarning("Sandbox sweep ended {Count} sandboxes whose host is gone", ended);
                }

                await Task.Delay(SandboxReaper.Interval, time, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Storage down: the next sweep tries again.
                logger.LogWarning(e, "Sandbox sweep failed");
                await Task.Delay(SandboxReaper.Interval, time, stoppingToken);
            }
        }
    }
}
