using Microsoft.DurableTask.Client;
using Sandstorm.Api;

namespace Sandstorm.Local;

/// <summary>
/// On start, submits again the journaled runs that the embedded Azurite lost (<see cref="RunService.ReplayAsync"/>:
/// never one whose orchestration exists, never one whose code may have started); then, every few seconds, drops from
/// the journal the runs that settled, once Azurite saved that and its files are fsynced.
/// </summary>
public sealed class RunJournalReplay(
    FileRunJournal journal, RunService runs, DurableTaskClient client, AzuriteData azurite, TimeProvider time, ILogger<RunJournalReplay> logger)
    : BackgroundService
{
    /// <summary>Azurite saves a changed database every five seconds; a settlement seen this long ago has been saved.</summary>
    public static readonly TimeSpan Saved = TimeSpan.FromSeconds(12);

    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    private readonly TaskCompletionSource _replayed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once every journaled run was looked at (and replayed where lost).</summary>
    public Task Replayed => _replayed.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            foreach (var run in journal.Runs)
            {
                if (await runs.ReplayAsync(client, run, stoppingToken))
                {
                    logger.LogWarning("Run {RunId} was accepted but lost by the store in a crash: {Action}", run.RunId, run.Started ? "recorded as interrupted" : "submitted again");
                    if (run.Started)
                    {
                        journal.Settled(run.RunId);
                    }
                }
            }
        }
        finally
        {
            _replayed.TrySetResult();
        }

        using var timer = new PeriodicTimer(Interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await TrimAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Trimming the intake journal failed; it is tried again");
            }
        }
    }

    private async Task TrimAsync(CancellationToken cancellationToken)
    {
        foreach (var run in journal.Runs)
        {
            if (await client.GetInstanceAsync(run.RunId, cancellationToken) is { IsCompleted: true })
            {
                journal.Settled(run.RunId);
            }
        }

        var saved = journal.SettledBefore(time.GetUtcNow() - Saved);
        if (saved.Count > 0)
        {
            // Azurite saved them (without fsync): make its files durable before the journal forgets the runs.
            FileRunJournal.Sync([azurite.Location, .. Directory.EnumerateFileSystemEntries(azurite.Location, "*", SearchOption.AllDirectories)]);
            journal.Drop(saved);
        }
    }
}

/// <summary>The embedded Azurite's data directory.</summary>
public sealed record AzuriteData(string Location);
