using Microsoft.DurableTask;

namespace Sandstorm.Orchestrations;

/// <summary>
/// Retry policies of the run pipeline's activities (transient failures only: activities return non-transient ones). Execute
/// has none: the orchestrator tries it again only when the outcome proves the code never started.
/// </summary>
public static class RetryPolicies
{
    /// <summary>Provision: three tries, then fail over to the next candidate.</summary>
    public static TaskOptions Provision { get; } = TaskOptions.FromRetryPolicy(new RetryPolicy(3, TimeSpan.FromMilliseconds(250), backoffCoefficient: 2, maxRetryInterval: TimeSpan.FromSeconds(2)));

    /// <summary>Settle must happen: many tries with backoff.</summary>
    public static TaskOptions Settle { get; } = TaskOptions.FromRetryPolicy(new RetryPolicy(8, TimeSpan.FromMilliseconds(250), backoffCoefficient: 2, maxRetryInterval: TimeSpan.FromSeconds(30)));

    /// <summary>Monitor is advisory: two tries.</summary>
    public static TaskOptions Monitor { get; } = TaskOptions.FromRetryPolicy(new RetryPolicy(2, TimeSpan.FromMilliseconds(250)));
}
