using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Pricing;
using Sandstorm.Providers;
using Sandstorm.Storage;

namespace Sandstorm.Orchestrations.Activities;

/// <summary>
/// Step 5, always last: releases the sandbox, bills the run once (the ledger row key is the run id), records provenance,
/// writes the final result. Every part is idempotent, so a retried or replayed settle changes nothing.
/// </summary>
public sealed class SettleActivity(
    IProviderCatalog catalog,
    RunPayloads payloads,
    RunStore runs,
    LedgerStore ledger,
    IRunRecorder recorder,
    IFaultInjector faults,
    RunCompletionNotifier notifier,
    TimeProvider time,
    ILogger<SettleActivity> logger)
    : TaskActivity<SettleInput, RunOutcome>
{
    public override Task<RunOutcome> RunAsync(TaskActivityContext context, SettleInput input) => ExecuteAsync(input, CancellationToken.None);

    public async Task<RunOutcome> ExecuteAsync(SettleInput input, CancellationToken cancellationToken)
    {
        var run = input.Run;
        var request = await payloads.GetRequestAsync(run, cancellationToken);
        ISandboxProvider? provider = input.Lease is { } l ? catalog.Get(l.Provider) : null;
        if (provider is not null)
        {
            await provider.ReleaseAsync(input.Lease!, cancellationToken);
        }

        var cost = CostBreakdown.Zero;
        if (provider is not null && input.Lease is { } lease)
        {
            var providerCost = input.Result is { } r
                ? provider.ComputeCost(lease, RunPayloads.SpecOf(request), ToResult(r))
                : 0m;
            cost = TierFees.Compute(lease.Provider, providerCost, request.SecurityTier);
            var settledAt = time.GetUtcNow();
            var (entry, added) = await ledger.AddOnceAsync(
                new LedgerEntry
                {
                    TenantId = run.TenantId,
                    RunId = run.RunId,
                    Provider = lease.Provider,
                    Runtime = lease.Runtime,
                    Region = lease.Region,
                    Status = input.Status,
                    ProviderCost = cost.Provider,
                    Fees = cost.Fees,
                    Total = cost.Total,
                    DurationMs = input.Result?.WallTimeMs ?? 0,
                    CpuMs = input.Result?.CpuTimeMs ?? 0,
                    PeakMemoryBytes = input.Result?.PeakMemoryBytes ?? 0,
                    LatencyMs = (long)(input.FinishedAt - run.SubmittedAt).TotalMilliseconds,
                    SettledAt = settledAt,
                    Language = request.Language,
                    CodeLength = request.Code.Length,
                    Cpu = request.Cpu,
                    MemoryMiB = request.Memory,
                    TimeoutMs = request.Timeout,
                    IsolationLevel = request.IsolationLevel,
                    Strategy = request.Strategy,
                    PredictedCostUsd = input.Route?.Chosen.PredictedCostUsd,
                    PredictedLatencyMs = input.Route?.Chosen.PredictedLatencyMs,
                },
                cancellationToken);
            cost = new CostBreakdown(entry.ProviderCost, entry.Fees, entry.Total);
            if (!added)
            {
                logger.LogInformation("Run {RunId} was already billed; settle is idempotent", run.RunId);
            }
        }

        await faults.AtAsync(FaultPoints.SettleAfterLedger);

        var result = new RunResult
        {
            Id = run.RunId,
            Status = input.Status,
            Provider = input.Lease?.Provider,
            Runtime = input.Result?.Runtime ?? input.Lease?.Runtime,
            Region = input.Lease?.Region,
            ExitCode = input.Result?.ExitCode,
            Duration = input.Result?.WallTimeMs,
            Cost = cost,
            Metrics = input.Result is { } m ? new RunMetrics(m.CpuTimeMs, m.PeakMemoryBytes) : null,
            Truncated = input.Result is { } t && (t.StdoutTruncated || t.StderrTruncated),
            Route = input.Route,
            Error = input.Error,
            CreatedAt = run.SubmittedAt,
            CompletedAt = input.FinishedAt,
        };

        var provenance = await recorder.RecordAsync(input, request, result, cancellationToken);
        result = result with { Provenance = provenance };

        await runs.UpsertAsync(
            new RunRecord
            {
                TenantId = run.TenantId,
                RunId = run.RunId,
                Status = input.Status,
                CreatedAt = run.SubmittedAt,
                CompletedAt = input.FinishedAt,
                Result = result,
                Stdout = input.Result?.Stdout,
                Stderr = input.Result?.Stderr,
                BatchId = run.BatchId,
            },
            cancellationToken);
        notifier.Settled(run.RunId);
        return new RunOutcome(run.RunId, input.Status, cost.Total, input.Error);
    }

    private static ExecutionResult ToResult(ExecutionSummary s) => new()
    {
        Runtime = s.Runtime,
        ExitCode = s.ExitCode,
        WallTimeMs = s.WallTimeMs,
        CpuTimeMs = s.CpuTimeMs,
        PeakMemoryBytes = s.PeakMemoryBytes,
        OomKilled = s.OomKilled,
        TimedOut = s.TimedOut,
    };
}
