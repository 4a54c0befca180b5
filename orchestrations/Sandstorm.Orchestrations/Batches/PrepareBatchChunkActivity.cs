using System.Text;
using Microsoft.DurableTask;
using Microsoft.Extensions.Options;
using Sandstorm.Core.Contracts;
using Sandstorm.Storage;

namespace Sandstorm.Orchestrations.Batches;

/// <summary>
/// Turns one chunk of the manifest into child run inputs: stores each request (by reference when over 2 KiB, so the
/// orchestration history stays small) and creates each run's row (queued, with its batch id) so the child is a normal run.
/// Idempotent: rows that exist are kept, blobs are overwritten with the same content.
/// </summary>
public sealed class PrepareBatchChunkActivity(
    PayloadStore payloads,
    RunStore runs,
    BatchStore batches,
    IOptions<RunPipelineOptions> pipeline,
    TimeProvider time)
    : TaskActivity<BatchChunkInput, BatchChunk>
{
    /// <summary>Requests up to this size travel inline in the orchestration history.</summary>
    public const int InlineRequestBytes = 2048;

    public override Task<BatchChunk> RunAsync(TaskActivityContext context, BatchChunkInput input) => ExecuteAsync(input, CancellationToken.None);

    public async Task<BatchChunk> ExecuteAsync(BatchChunkInput input, CancellationToken cancellationToken)
    {
        var batch = await batches.GetAsync(input.TenantId, input.BatchId, cancellationToken)
            ?? throw new InvalidOperationException($"batch {input.BatchId} of tenant {input.TenantId} has no row");
        if (batch.Status is BatchStatus.Cancelling or BatchStatus.Cancelled)
        {
            return new BatchChunk([], CancelRequested: true);
        }

        if (batch.Status is BatchStatus.Queued)
        {
            await batches.SetStatusAsync(input.TenantId, input.BatchId, BatchStatus.Running, null, cancellationToken);
        }

        var manifest = await payloads.GetBlobAsync(input.Manifest, cancellationToken)
            ?? throw new InvalidOperationException($"manifest {input.Manifest} is missing");
        var lines = manifest.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Skip(input.Start).Take(input.Count).ToArray();
        var now = time.GetUtcNow();
        var inputs = new RunInput[lines.Length];
        await Parallel.ForEachAsync(
            Enumerable.Range(0, lines.Length),
            new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                var index = input.Start + i;
                var runId = BatchEvents.RunId(input.BatchId, index);
                var request = System.Text.Json.JsonSerializer.Deserialize<RunRequest>(lines[i], Core.SandstormJson.Options)
                    ?? throw new InvalidOperationException($"manifest line {index} is null");
                var bytes = Encoding.UTF8.GetByteCount(lines[i]);
                Payload payload;
                if (bytes <= InlineRequestBytes)
                {
                    payload = new Payload(lines[i], null, bytes);
                }
                else
                {
                    var blob = RunPayloads.BlobName(input.TenantId, runId, "request.json");
                    await payloads.PutBlobAsync(blob, BinaryData.FromString(lines[i]), ct);
                    payload = new Payload(null, blob, bytes);
                }

                await runs.TryCreateAsync(
                    new RunRecord { TenantId = input.TenantId, RunId = runId, Status = RunStatus.Queued, CreatedAt = now, BatchId = input.BatchId },
                    ct);
                inputs[i] = new RunInput
                {
                    RunId = runId,
                    TenantId = input.TenantId,
                    Intent = RunIntent.Of(request),
                    Request = payload,
                    DeadlineMs = pipeline.Value.DeadlineMs(request.Timeout),
                    SubmittedAt = now,
                    BatchId = input.BatchId,
                };
            });
        return new BatchChunk(inputs, CancelRequested: false);
    }
}
