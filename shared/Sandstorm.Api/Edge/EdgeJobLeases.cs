using Sandstorm.Storage.Edge;

namespace Sandstorm.Api.Edge;

/// <summary>
/// Compares what an agent says it holds (its heartbeat) with the job table. Jobs it holds but should no longer run are
/// answered with a cancel; leased jobs it does not hold are left to the sweeper, which offers them again once the lease
/// has expired (<see cref="EdgeSweeper"/>).
/// </summary>
public sealed class EdgeJobLeases(EdgeJobStore jobs)
{
    /// <summary>Most held jobs looked at per heartbeat (an agent runs far fewer at once).</summary>
    public const int MaxReported = 256;

    /// <summary>
    /// The held jobs the agent must stop: cancelled (the run was cancelled or ended), completed by someone else (another
    /// agent, or failed by the control plane), moved to another agent, or unknown in the agent's tenant.
    /// </summary>
    public async Task<IReadOnlyList<string>> JobsToCancelAsync(string tenantId, string agentId, IReadOnlyList<string>? held, CancellationToken cancellationToken)
    {
        if (held is null || held.Count == 0)
        {
            return [];
        }

        var cancel = new List<string>();
        foreach (var jobId in held.Where(id => !string.IsNullOrEmpty(id)).Distinct(StringComparer.Ordinal).Take(MaxReported))
        {
            var job = await jobs.GetAsync(tenantId, jobId, cancellationToken);
            if (ShouldStop(job, agentId))
            {
                cancel.Add(jobId);
            }
        }

        return cancel;
    }

    /// <summary>True when an agent holding <paramref name="job"/> must stop running it.</summary>
    public static bool ShouldStop(EdgeJobRecord? job, string agentId) => job switch
    {
        null => true,
        { State: EdgeJobState.Cancelled } => true,
        { State: EdgeJobState.Completed } => !string.Equals(job.CompletedBy, agentId, StringComparison.Ordinal),
        _ => !string.Equals(job.AgentId, agentId, StringComparison.Ordinal),
    };
}
