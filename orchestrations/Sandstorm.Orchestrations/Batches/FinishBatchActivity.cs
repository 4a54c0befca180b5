using System.Text;
using System.Text.Json;
using Microsoft.DurableTask;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Storage;

namespace Sandstorm.Orchestrations.Batches;

/// <summary>
/// Joins the chunk parts into one results blob (input order; items of chunks never prepared are listed as cancelled)
/// and marks the batch completed or cancelled. Idempotent: the blob is overwritten with the same content.
/// </summary>
public sealed class FinishBatchActivity(PayloadStore payloads, BatchStore batches, TimeProvider time)
    : TaskActivity<FinishBatchInput, string>
{
    public override Task<string> RunAsync(TaskActivityContext context, FinishBatchInput input) => ExecuteAsync(input, CancellationToken.None);

    public async Task<string> ExecuteAsync(FinishBatchInput input, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        for (var chunk = 0; chunk < input.Chunks; chunk++)
        {
            var part = await payloads.GetBlobAsync(BatchEvents.ResultsPartBlob(input.TenantId, input.BatchId, chunk), cancellationToken)
                ?? throw new InvalidOperationException($"results part {chunk} of batch {input.BatchId} is missing");
            text.Append(part.ToString());
        }

        var error = new RunError(ErrorCodes.Cancelled, "cancelled before it started: the batch was cancelled");
        for (var index = input.Prepared; index < input.Total; index++)
        {
            var line = new BatchResultLine { Index = index, RunId = BatchEvents.RunId(input.BatchId, index), Status = RunStatus.Cancelled, Error = error };
            text.Append(JsonSerializer.Serialize(line, SandstormJson.Options)).Append('\n');
        }

        var blob = BatchEvents.ResultsBlob(input.TenantId, input.BatchId);
        await payloads.PutBlobAsync(blob, BinaryData.FromString(text.ToString()), cancellationToken);
        await batches.SetStatusAsync(
            input.TenantId, input.BatchId, input.Cancelled ? BatchStatus.Cancelled : BatchStatus.Completed, time.GetUtcNow(), cancellationToken);
        return blob;
    }
}
