using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;

namespace Sandstorm.Orchestrations.Batches;

/// <summary>
/// One batch: for each chunk of at most 500 items, prepares the child runs, keeps at most <see cref="BatchInput.MaxConcurrency"/>
/// <see cref="SandboxRunOrchestrator"/> sub-orchestrations in flight (instance id = <c>{batchId}-{index:D5}</c>), writes the
/// chunk's results in input order, then continues as new so the history stays one chunk long. A <see cref="BatchEvents.Cancel"/>
/// event starts nothing more and forwards the cancel to the children in flight. A tenant's batches take turns (its lane,
/// <see cref="Storage.BatchLaneStore"/>), so the tenant's limit holds across all of them.
/// </summary>
public static class BatchOrchestrator
{
    private static readonly TaskOptions Retry = TaskOptions.FromRetryPolicy(
        new RetryPolicy(8, TimeSpan.FromMilliseconds(250), backoffCoefficient: 2, maxRetryInterval: TimeSpan.FromSeconds(30)));

    /// <summary>Registers the orchestrator. Kept beside it: the Durable analyzers follow the method only within one file.</summary>
    public static void Register(DurableTaskRegistry registry) =>
        registry.AddOrchestratorFunc<BatchInput, BatchOutcome?>(nameof(BatchOrchestrator), RunAsync);

    public static async Task<BatchOutcome?> RunAsync(TaskOrchestrationContext context, BatchInput input)
    {
        try
        {
            return await RunChunkAsync(context, input);
        }
        catch (TaskFailedException)
        {
            // Whatever ends the batch hands the tenant's lane on, or the tenant's next batch would wait for ever.
            await LeaveLaneAsync(context, input);
            throw;
        }
    }

    private static async Task<BatchOutcome?> RunChunkAsync(TaskOrchestrationContext context, BatchInput input)
    {
        var log = context.CreateReplaySafeLogger(nameof(BatchOrchestrator));
        var count = Math.Min(input.ChunkSize, input.Total - input.Start);
        var chunkIndex = input.Start / input.ChunkSize;
        var counts = input.Counts;
        var cancel = context.WaitForExternalEvent<string>(BatchEvents.Cancel);
        var cancelled = false;

        // The tenant's limit holds across its batches: they take turns, each with up to MaxConcurrency runs in flight.
        if (!input.Admitted)
        {
            if (!await context.CallActivityAsync<bool>(nameof(JoinBatchLaneActivity), new BatchLaneInput(input.TenantId, input.BatchId), Retry))
            {
                log.LogInformation("Batch {BatchId} waits for the tenant's earlier batches", input.BatchId);
                context.SetCustomStatus(new BatchProgress(input.Total, counts, false));
                cancelled = await Task.WhenAny(context.WaitForExternalEvent<string>(BatchEvents.Turn), cancel) == cancel;
            }

            input = input with { Admitted = true };
        }

        var chunk = await context.CallActivityAsync<BatchChunk>(
            nameof(PrepareBatchChunkActivity), new BatchChunkInput(input.TenantId, input.BatchId, input.Manifest, input.Start, count), Retry);
        cancelled |= chunk.CancelRequested;

        var outcomes = new BatchItemOutcome[chunk.Runs.Count];
        var inFlight = new List<(Task<RunOutcome> Task, int Slot)>();
        var next = 0;
        // Bounded: every pass either starts a child or waits for one to finish (or for the one cancel event).
        while (inFlight.Count > 0 || (!cancelled && next < chunk.Runs.Count))
        {
            while (!cancelled && inFlight.Count < input.MaxConcurrency && next < chunk.Runs.Count)
            {
                var run = chunk.Runs[next];
                inFlight.Add((context.CallSubOrchestratorAsync<RunOutcome>(
                    nameof(SandboxRunOrchestrator), run, new SubOrchestrationOptions { InstanceId = run.RunId }), next));
                next++;
            }

            context.SetCustomStatus(new BatchProgress(input.Total, counts with { Running = inFlight.Count }, cancelled));
            var waitOn = inFlight.Select(f => (Task)f.Task).ToList();
            if (!cancelled)
            {
                waitOn.Add(cancel);
            }

            var winner = await Task.WhenAny(waitOn);
            if (winner == cancel)
            {
                cancelled = true;
                log.LogInformation("Batch {BatchId} cancelled: stopping {Count} runs in flight", input.BatchId, inFlight.Count);
                foreach (var (_, slot) in inFlight)
                {
                    context.SendEvent(chunk.Runs[slot].RunId, RunEvents.Cancel, "batch cancelled: " + cancel.Result);
                }

                continue;
            }

            var done = inFlight.First(f => f.Task == winner);
            inFlight.Remove(done);
            var index = input.Start + done.Slot;
            var runId = chunk.Runs[done.Slot].RunId;
            try
            {
                var outcome = await done.Task;
                outcomes[done.Slot] = new BatchItemOutcome(index, runId, true, outcome.Status, outcome.TotalCost, outcome.Error);
            }
            catch (TaskFailedException e)
            {
                // The child's own Settle gave up: report the item as failed rather than failing the whole batch.
                outcomes[done.Slot] = new BatchItemOutcome(index, runId, true, RunStatus.Failed, 0m, new RunError(ErrorCodes.Internal, e.Message));
            }

            counts = counts.Add(outcomes[done.Slot].Status, outcomes[done.Slot].Cost);
        }

        for (var slot = next; slot < chunk.Runs.Count; slot++)
        {
            outcomes[slot] = new BatchItemOutcome(input.Start + slot, chunk.Runs[slot].RunId, false, RunStatus.Cancelled, 0m,
                new RunError(ErrorCodes.Cancelled, "cancelled before it started: the batch was cancelled"));
            counts = counts.Add(RunStatus.Cancelled, 0m);
        }

        await context.CallActivityAsync(nameof(WriteBatchResultsActivity), new BatchResultsInput(input.TenantId, input.BatchId, chunkIndex, outcomes), Retry);

        // Fewer than count when the batch was cancelled before this chunk was prepared.
        var end = input.Start + chunk.Runs.Count;
        if (!cancelled && end < input.Total)
        {
            context.SetCustomStatus(new BatchProgress(input.Total, counts, false));
            context.ContinueAsNew(input with { Start = end, Counts = counts }, preserveUnprocessedEvents: true);
            return null;
        }

        // Items of chunks never prepared count as cancelled too.
        counts = counts with { Running = 0, Cancelled = counts.Cancelled + (input.Total - end) };
        context.SetCustomStatus(new BatchProgress(input.Total, counts, cancelled));
        var results = await context.CallActivityAsync<string>(
            nameof(FinishBatchActivity), new FinishBatchInput(input.TenantId, input.BatchId, input.Total, chunkIndex + 1, end, cancelled), Retry);
        await LeaveLaneAsync(context, input);
        log.LogInformation("Batch {BatchId} finished: {Succeeded} succeeded, {Failed} failed, {Cancelled} cancelled", input.BatchId, counts.Succeeded, counts.Failed, counts.Cancelled);
        return new BatchOutcome(input.BatchId, input.Total, counts, cancelled, results);
    }

    private static async Task LeaveLaneAsync(TaskOrchestrationContext context, BatchInput input)
    {
        var next = await context.CallActivityAsync<string?>(nameof(LeaveBatchLaneActivity), new BatchLaneInput(input.TenantId, input.BatchId), Retry);
        if (next is not null)
        {
            context.SendEvent(next, BatchEvents.Turn, input.BatchId);
        }
    }
}
