using Microsoft.DurableTask;
using Sandstorm.Storage;

namespace Sandstorm.Orchestrations.Batches;

/// <summary>Input of the lane activities.</summary>
public sealed record BatchLaneInput(string TenantId, string BatchId);

/// <summary>Enters a batch in its tenant's lane; true when it may run now, false when it waits for its turn.</summary>
public sealed class JoinBatchLaneActivity(BatchLaneStore lanes) : TaskActivity<BatchLaneInput, bool>
{
    public override Task<bool> RunAsync(TaskActivityContext context, BatchLaneInput input) => ExecuteAsync(input, CancellationToken.None);

    public Task<bool> ExecuteAsync(BatchLaneInput input, CancellationToken cancellationToken) =>
        lanes.JoinAsync(input.TenantId, input.BatchId, cancellationToken);
}

/// <summary>Takes an ended batch out of its tenant's lane; returns the batch whose turn it now is, if any.</summary>
public sealed class LeaveBatchLaneActivity(BatchLaneStore lanes) : TaskActivity<BatchLaneInput, string?>
{
    public override Task<string?> RunAsync(TaskActivityContext context, BatchLaneInput input) => ExecuteAsync(input, CancellationToken.None);

    public Task<string?> ExecuteAsync(BatchLaneInput input, CancellationToken cancellationToken) =>
        lanes.LeaveAsync(input.TenantId, input.BatchId, cancellationToken);
}
