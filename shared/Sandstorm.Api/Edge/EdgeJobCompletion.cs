using System.Text.Json;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Orchestrations;
using Sandstorm.Storage;
using Sandstorm.Storage.Edge;

namespace Sandstorm.Api.Edge;

/// <summary>
/// Completes edge jobs exactly once and wakes their runs. Completion is two conditional writes around the event:
/// (1) queued/leased → completed with the outcome stored, (2) raise <c>job-completed:{jobId}</c>, (3) mark the event raised.
/// Only the writer of (1) raises, so a re-posted result raises nothing; a crash between (1) and (3) is healed by the
/// sweeper, which raises events still unmarked after <see cref="RaiseRecoveryAfter"/>.
/// </summary>
public sealed class EdgeJobCompletion(EdgeJobStore jobs, PayloadStore payloads, RunPayloads runPayloads, TimeProvider time, ILogger<EdgeJobCompletion> logger)
{
    /// <summary>How long a completed job may wait for its event mark before the sweeper raises the event again.</summary>
    public static readonly TimeSpan RaiseRecoveryAfter = TimeSpan.FromSeconds(15);

    private const int Rounds = 8;

    /// <summary>
    /// Applies an agent's result if the agent still holds the job's lease (checked on every conditional write, so a lease
    /// the sweeper moves meanwhile is seen). <see cref="EdgeResultOutcome.AlreadyApplied"/> when the job had already been
    /// completed by this agent or cancelled while it held it (acknowledged, nothing changes).
    /// </summary>
    public Task<EdgeResultOutcome> ApplyResultAsync(DurableTaskClient client, EdgeJobRecord job, string agentId, EdgeJobResult result, CancellationToken cancellationToken) =>
        CompleteAsync(
            client,
            job,
            async () => result.Error is { } error
                ? new ExecuteOutcome(null, error with { Message = $"edge agent {agentId}: {error.Message}" })
                : new ExecuteOutcome(await SummarizeAsync(job, result.Result!, cancellationToken), null),
            agentId,
            holder: agentId,
            cancellationToken);

    /// <summary>
    /// Completes the job held by <paramref name="agentId"/> with a failure instead of the result it posted (a result the
    /// control plane refuses, such as one run under a weaker isolation than required): the run fails with the reason.
    /// </summary>
    public Task<EdgeResultOutcome> RefuseResultAsync(DurableTaskClient client, EdgeJobRecord job, string agentId, RunError error, CancellationToken cancellationToken) =>
        CompleteAsync(client, job, () => Task.FromResult(new ExecuteOutcome(null, error)), agentId, holder: agentId, cancellationToken);

    /// <summary>
    /// True when <paramref name="agentId"/> holds the job: it is assigned to it now (queued or leased to it, or cancelled
    /// while it was), or this agent's own result completed it (its re-posts are acknowledged).
    /// </summary>
    public static bool HeldBy(EdgeJobRecord job, string agentId) => job.State == EdgeJobState.Completed
        ? string.Equals(job.CompletedBy, agentId, StringComparison.Ordinal)
        : string.Equals(job.AgentId, agentId, StringComparison.Ordinal);

    /// <summary>Fails a job the control plane gave up on (its agent died and nobody else can take it).</summary>
    public async Task<bool> FailAsync(DurableTaskClient client, EdgeJobRecord job, RunError error, CancellationToken cancellationToken) =>
        await CompleteAsync(client, job, () => Task.FromResult(new ExecuteOutcome(null, error)), "control-plane", holder: null, cancellationToken)
            == EdgeResultOutcome.Applied;

    /// <summary>Raises the completion event of a completed job whose event is not marked raised, and marks it.</summary>
    public async Task RaiseAsync(DurableTaskClient client, EdgeJobRecord job, CancellationToken cancellationToken)
    {
        var json = await payloads.GetAsync(job.Outcome ?? throw new InvalidOperationException($"job {job.JobId} has no outcome"), cancellationToken);
        var outcome = JsonSerializer.Deserialize<ExecuteOutcome>(json, SandstormJson.Options)!;
        var instance = await client.GetInstanceAsync(job.RunId, getInputsAndOutputs: false, cancellationToken);
        if (instance is { IsCompleted: false })
        {
            await client.RaiseEventAsync(job.RunId, RunEvents.JobCompleted + ":" + job.JobId, outcome, cancellationToken);
            logger.LogInformation("Job {JobId} completed; run {RunId} notified", job.JobId, job.RunId);
        }
        else
        {
            // A run that is gone or finished (deadline, cancel) waits for nothing: mark it so the sweeper stops trying.
            logger.LogInformation("Job {JobId} completed after its run {RunId} finished; no event raised", job.JobId, job.RunId);
        }

        for (var round = 0; round < Rounds; round++)
        {
            var current = await jobs.GetAsync(job.TenantId, job.JobId, cancellationToken);
            if (current is null || current.EventRaised)
            {
                return;
            }

            var raised = instance is { IsCompleted: false } ? current.EventsRaised + 1 : current.EventsRaised;
            if (await jobs.TryUpdateAsync(current with { EventRaised = true, EventsRaised = raised }, cancellationToken) is not null)
            {
                return;
            }
        }
    }

    // holder: the agent whose post this is (null: the control plane). A post from an agent that does not hold the job
    // changes nothing, not even the delivery count.
    private async Task<EdgeResultOutcome> CompleteAsync(
        DurableTaskClient client, EdgeJobRecord job, Func<Task<ExecuteOutcome>> outcome, string completedBy, string? holder, CancellationToken cancellationToken)
    {
        // Outputs are stored only while the job is still open, so a re-post never overwrites the applied result's blobs.
        Payload? stored = null;
        var current = job;
        var countDelivery = holder is not null;
        for (var round = 0; round < Rounds; round++)
        {
            if (holder is not null && !HeldBy(current, holder))
            {
                return EdgeResultOutcome.LeaseLost;
            }

            var deliveries = current.Deliveries + (countDelivery ? 1 : 0);
            if (current.State is EdgeJobState.Completed or EdgeJobState.Cancelled)
            {
                // Already settled: only count the re-post (re-reading when the event mark lands in between).
                if (!countDelivery || await jobs.TryUpdateAsync(current with { Deliveries = deliveries }, cancellationToken) is not null)
                {
                    return EdgeResultOutcome.AlreadyApplied;
                }

                current = await jobs.GetAsync(job.TenantId, job.JobId, cancellationToken)
                    ?? throw new InvalidOperationException($"job {job.JobId} disappeared");
                continue;
            }

            stored ??= await payloads.PutAsync(
                RunPayloads.BlobName(job.TenantId, job.RunId, $"edge-job-outcome-{completedBy}.json"),
                JsonSerializer.Serialize(await outcome(), SandstormJson.Options),
                cancellationToken);
            var completed = await jobs.TryUpdateAsync(
                current with
                {
                    State = EdgeJobState.Completed,
                    CompletedAt = time.GetUtcNow(),
                    CompletedBy = completedBy,
                    Outcome = stored,
                    EventRaised = false,
                    Deliveries = deliveries,
                },
                cancellationToken);
            if (completed is not null)
            {
                await RaiseAsync(client, completed, cancellationToken);
                return EdgeResultOutcome.Applied;
            }

            current = await jobs.GetAsync(job.TenantId, job.JobId, cancellationToken)
                ?? throw new InvalidOperationException($"job {job.JobId} disappeared");
        }

        throw new InvalidOperationException($"job {job.JobId} kept changing while it was being completed");
    }

    private Task<ExecutionSummary> SummarizeAsync(EdgeJobRecord job, ExecutionResult result, CancellationToken cancellationToken) =>
        runPayloads.SummarizeAsync(job.TenantId, job.RunId, result, cancellationToken);
}

/// <summary>What became of a result post.</summary>
public enum EdgeResultOutcome
{
    /// <summary>The job was completed by this post and its run woken.</summary>
    Applied,

    /// <summary>The job had already been completed by this agent, or cancelled while it held it: nothing changed.</summary>
    AlreadyApplied,

    /// <summary>The agent no longer holds the job (moved to another agent, or settled without it): nothing changed.</summary>
    LeaseLost,
}
