namespace Sandstorm.Providers.Edge;

/// <summary>How the control plane treats edge agents (section <c>Sandstorm:Edge</c>).</summary>
public sealed class EdgeOptions
{
    public const string Section = "Sandstorm:Edge";

    /// <summary>An agent with no heartbeat for this long is dead: it gets no new work and its jobs are given away.</summary>
    public TimeSpan AgentTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the sweeper looks for jobs of dead agents.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a leased job may be missing from its agent's heartbeats before it is offered again: the poll answer
    /// that carried it never arrived. Longer than a heartbeat interval plus a slow poll answer.
    /// </summary>
    public TimeSpan LeaseTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Most leases of one job (its first run plus re-dispatches) before it is failed.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Added to a job's execution timeout to get its deadline (transfer, queueing, start-up).</summary>
    public TimeSpan JobGrace { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a long poll re-reads the job table when no in-process signal wakes it (another instance dispatched).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest long poll an agent may ask for.</summary>
    public int MaxWaitSeconds { get; set; } = 30;
}
