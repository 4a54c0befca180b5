using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Providers.Edge;
using Sandstorm.Storage.Edge;

namespace Sandstorm.Api.Edge;

/// <summary>
/// Finds queued and leased jobs whose agent stopped heartbeating and gives each to another live agent of the same tenant
/// (same region, a runtime of the job's isolation level), or fails it with the reason when none can take it or it has
/// used up its attempts. A job leased to a live agent whose heartbeats do not list it past the lease timeout (the poll
/// answer was lost) is queued for that agent again. Also raises completion events a crash left unraised. Run by a hosted loop on the local host and
/// by a timer function in Azure; safe to run concurrently (every change is an ETag-conditional write).
/// </summary>
public sealed class EdgeSweeper(
    EdgeJobStore jobs,
    EdgeProvider provider,
    EdgeJobCompletion completion,
    EdgeJobSignal signal,
    IOptions<EdgeOptions> options,
    TimeProvider time,
    ILogger<EdgeSweeper> logger)
{
    /// <summary>One pass; returns how many jobs were re-dispatched and how many failed.</summary>
    public async Task<(int Redispatched, int Failed)> SweepAsync(DurableTaskClient client, CancellationToken cancellationToken)
    {
        var (redispatched, failed) = (0, 0);
        var open = await jobs.ListOpenAsync(cancellationToken);
        var now = time.GetUtcNow();
        foreach (var tenantJobs in open.GroupBy(j => j.TenantId, StringComparer.Ordinal))
        {
            var live = await provider.LiveAgentsAsync(tenantJobs.Key, cancellationToken);
            foreach (var job in tenantJobs)
            {
                bool? outcome;
                if (live.FirstOrDefault(a => a.AgentId == job.AgentId) is { } agent)
                {
                    if (!LeaseExpired(job, agent))
                    {
                        continue;
                    }

                    outcome = await OfferAgainAsync(client, job, agent, cancellationToken);
                    redispatched += outcome == true ? 1 : 0;
                    failed += outcome == false ? 1 : 0;
                    continue;
                }

                outcome = await GiveAwayAsync(client, job, live, cancellationToken);
                redispatched += outcome == true ? 1 : 0;
                failed += outcome == false ? 1 : 0;
            }
        }

        foreach (var job in await jobs.ListUnraisedAsync(cancellationToken))
        {
            if (job.CompletedAt is { } at && now - at > EdgeJobCompletion.RaiseRecoveryAfter)
            {
                logger.LogWarning("Job {JobId}: completion event not marked raised; raising it again", job.JobId);
                await completion.RaiseAsync(client, job, cancellationToken);
            }
        }

        return (redispatched, failed);
    }

    /// <summary>
    /// True when a live agent's heartbeat, received at least <see cref="EdgeOptions.LeaseTimeout"/> after the job was
    /// leased to it, does not list the job: the poll answer that carried it never reached the agent.
    /// </summary>
    public bool LeaseExpired(EdgeJobRecord job, EdgeAgentRecord agent) =>
        job.State == EdgeJobState.Leased
        && job.LeasedAt is { } leasedAt
        && agent is { LastHeartbeat: { } heard, Heartbeat.Jobs: { } held }
        && heard - leasedAt >= options.Value.LeaseTimeout
        && !held.Contains(job.JobId, StringComparer.Ordinal);

    // The same agent gets the job again with its next poll (it drops an offer of a job it already holds, so a late
    // heartbeat costs a lease, never a second execution); past the attempt limit the run fails with the reason.
    private async Task<bool?> OfferAgainAsync(DurableTaskClient client, EdgeJobRecord job, EdgeAgentRecord agent, CancellationToken cancellationToken)
    {
        if (job.Attempts < options.Value.MaxAttempts)
        {
            if (await jobs.TryUpdateAsync(job with { State = EdgeJobState.Queued, LeasedAt = null }, cancellationToken) is null)
            {
                return null;
            }

            logger.LogWarning(
                "Job {JobId} of run {RunId}: edge agent {AgentId} never acknowledged its lease; offered again (attempt {Attempt})",
                job.JobId, job.RunId, agent.AgentId, job.Attempts + 1);
            signal.Notify(job.TenantId, agent.AgentId);
            return true;
        }

        var why = $"edge agent {agent.AgentId} never acknowledged job {job.JobId} (its poll answers were lost); gave up after {job.Attempts} lease(s)";
        logger.LogWarning("Job {JobId} of run {RunId} failed: {Reason}", job.JobId, job.RunId, why);
        return await completion.FailAsync(client, job, new RunError(ErrorCodes.EdgeAgentLost, why), cancellationToken) ? false : null;
    }

    // true = re-dispatched, false = failed, null = someone else changed the job first.
    private async Task<bool?> GiveAwayAsync(DurableTaskClient client, EdgeJobRecord job, IReadOnlyList<EdgeAgentRecord> live, CancellationToken cancellationToken)
    {
        var reason = $"edge agent {job.AgentId} stopped heartbeating";
        var keepRuntime = EdgeProvider.PickAgent(live, job.Region, job.Runtime, job.IsolationLevel, exclude: job.AgentId, bootcImage: job.BootcImage);
        var target = keepRuntime ?? EdgeProvider.PickAgent(live, job.Region, null, job.IsolationLevel, exclude: job.AgentId, bootcImage: job.BootcImage);
        if (target is not null && job.Attempts < options.Value.MaxAttempts)
        {
            var moved = await jobs.TryUpdateAsync(
                job with
                {
                    AgentId = target.AgentId,
                    Agents = [.. job.Agents, target.AgentId],
                    State = EdgeJobState.Queued,
                    LeasedAt = null,

                    // Another agent may lack the routed runtime: then it picks the best of the level itself.
                    Runtime = keepRuntime is null ? null : job.Runtime,
                },
                cancellationToken);
            if (moved is null)
            {
                return null;
            }

            logger.LogWarning("Job {JobId} of run {RunId}: {Reason}; re-dispatched to {Target} (attempt {Attempt})", job.JobId, job.RunId, reason, target.AgentId, job.Attempts + 1);
            signal.Notify(job.TenantId, target.AgentId);
            return true;
        }

        var why = target is null
            ? $"{reason} and no other live agent of the tenant in region '{job.Region}' offers isolation '{job.IsolationLevel.ToString().ToLowerInvariant()}'"
            : $"{reason}; gave up after {job.Attempts} attempt(s)";
        logger.LogWarning("Job {JobId} of run {RunId} failed: {Reason}", job.JobId, job.RunId, why);
        return await completion.FailAsync(client, job, new RunError(ErrorCodes.EdgeAgentLost, why), cancellationToken) ? false : null;
    }
}
