using System.Text;
using System.Text.Json;
using Microsoft.DurableTask;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Storage;

namespace Sandstorm.Orchestrations.Batches;

/// <summary>
/// Writes one chunk's results as a JSON Lines part blob in input order, with each run's exit code and outputs read
/// from its row; marks items that never started as cancelled. Overwrites the part, so a retry changes nothing.
/// </summary>
public sealed class WriteBatchResultsActivity(PayloadStore payloads, RunStore runs, TimeProvider time)
    : TaskActivity<BatchResultsInput, bool>
{
    public override async Task<bool> RunAsync(TaskActivityContext context, BatchResultsInput input)
    {
        await ExecuteAsync(input, CancellationToken.None);
        return true;
    }

    public async Task ExecuteAsync(BatchResultsInput input, CancellationToken cancellationToken)
    {
        var lines = new BatchResultLine[input.Items.Count];
        var now = time.GetUtcNow();
        await Parallel.ForEachAsync(
            Enumerable.Range(0, input.Items.Count),
            new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                var item = input.Items[i];
                var line = new BatchResultLine { Index = item.Index, RunId = item.RunId, Status = item.Status, Cost = item.Cost, Error = item.Error };
                if (!item.Started)
                {
                    await runs.UpsertAsync(
                        new RunRecord
                        {
                            TenantId = input.TenantId,
                            RunId = item.RunId,
                            Status = RunStatus.Cancelled,
                            CompletedAt = now,
                            BatchId = input.BatchId,
                            Result = new RunResult { Id = item.RunId, Status = RunStatus.Cancelled, Error = item.Error, CompletedAt = now },
                        },
                        ct);
                }
                else if (await runs.GetAsync(input.TenantId, item.RunId, ct) is { } record)
                {
                    line = line with
                    {
                        ExitCode = record.Result?.ExitCode,
                        Stdout = record.Stdout?.IsInline == true ? record.Stdout.Inline : null,
                        Stderr = record.Stderr?.IsInline == true ? record.Stderr.Inline : null,
                        StdoutBlob = record.Stdout?.BlobName,
                        StderrBlob = record.Stderr?.BlobName,
                    };
                }

                lines[i] = line;
            });

        var text = new StringBuilder();
        foreach (var line in lines)
        {
            text.Append(JsonSerializer.Serialize(line, SandstormJson.Options)).Append('\n');
        }

        await payloads.PutBlobAsync(BatchEvents.ResultsPartBlob(input.TenantId, input.BatchId, input.Chunk), BinaryData.FromString(text.ToString()), cancellationToken);
    }
}
