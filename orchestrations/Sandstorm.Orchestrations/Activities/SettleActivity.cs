using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Observability;
using Sandstorm.Core.Pricing;
using Sandstorm.Providers;
using Sandstorm.Routing;
using Sandstorm.Storage;

namespace Sandstorm.Orchestrations.Activities;

/// <summary>
/// Step 5, always last: releases the sandbox, bills the run once (the ledger row key is the run id), records provenance,
/// writes the final result. Every part is idempotent, so a retried or replayed settle changes nothing. Release, billing
/// and provenance are independent and run side by side; the result is written once all three hold.
/// </summary>
public sealed class SettleActivity(
    IProviderCatalog catalog,
    RunStore runs,
    LedgerStore ledger,
    IRunRecorder recorder,
    IFaultInjector faults,
    RunCompletionNotifier notifier,
    SettleRouting routing,
    TimeProvider time,
    ILogger<SettleActivity> logger)
    : TaskActivity<SettleInput, RunOutcome>
{
    public override Task<RunOutcome> RunAsync(TaskActivityContext context, SettleInput input) => ExecuteAsync(input, CancellationToken.None);

    public Task<RunOutcome> ExecuteAsync(SettleInput input, CancellationToken cancellationToken) =>
        RunObservability.TraceAsync(ObservabilityNames.Spans.Settle, input.Run, () => SettleAsync(input, cancellationToken), (span, o) => RunObservability.Settled(span, input, o));

    private async Task<RunOutcome> SettleAsync(SettleInput input, CancellationToken cancellationToken)
    {
        input = RequireIsolation(input);
        var run = input.Run;
        var intent = run.Intent;
        var lease = input.Lease;
        var provider = lease is null ? null : catalog.Get(lease.Provider);

        // Cost is a pure function of the run, so a retry computes the same figure the ledger already holds.
        var fees = new FeeBreakdown(0m, 0m, 0m, null, 0m);
        if (provider is not null && lease is not null)
        {
            var providerCost = input.Result is { } r ? provider.ComputeCost(lease, BilledSpec(intent), ToResult(r)) : 0m;
            fees = SettleRouting.Fees(lease.Provider, providerCost, intent.SecurityTier, input.Route, SettleRouting.ShieldBilled(ShieldOf(input)));
        }

        var cost = fees.ToCost();

        var result = new RunResult
        {
            Id = run.RunId,
            Status = input.Status,
            Provider = lease?.Provider,
            Runtime = input.Result?.Runtime ?? lease?.Runtime,
            Region = lease?.Region,
            ExitCode = input.Result?.ExitCode,
            Duration = input.Result?.WallTimeMs,
            Cost = cost,
            Metrics = input.Result is { } m ? new RunMetrics(m.CpuTimeMs, m.PeakMemoryBytes) : null,
            Truncated = input.Result is { } t && (t.StdoutTruncated || t.StderrTruncated),
            Route = input.Route,
            Error = input.Error,
            Shield = ShieldOf(input),
            CreatedAt = run.SubmittedAt,
            CompletedAt = input.FinishedAt,
        };

        var release = provider is null ? Task.CompletedTask : provider.ReleaseAsync(lease!, cancellationToken);
        var billed = provider is null ? Task.FromResult<LedgerEntry?>(null) : BillAsync(input, fees, cancellationToken);
        var provenance = recorder.RecordAsync(input, result, cancellationToken);
        await Task.WhenAll(release, billed, provenance);

        await faults.AtAsync(FaultPoints.SettleAfterLedger);
        routing.Observe(input, Workload.From(intent), fees.ProviderCost);

        if (await billed is { } entry)
        {
            result = result with { Cost = new CostBreakdown(entry.ProviderCost, entry.Fees, entry.Total) };
        }

        result = result with { Provenance = await provenance };
        var record = new RunRecord
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
            };
        await runs.UpsertAsync(record, cancellationToken);
        notifier.Settled(record);
        return new RunOutcome(run.RunId, input.Status, result.Cost!.Total, input.Error);
    }

    private async Task<LedgerEntry?> BillAsync(SettleInput input, FeeBreakdown cost, CancellationToken cancellationToken)
    {
        var (run, lease, request) = (input.Run, input.Lease!, input.Run.Intent);
        var workload = Workload.From(request);
        var (entry, added) = await ledger.AddOnceAsync(
            new LedgerEntry
            {
                TenantId = run.TenantId,
                RunId = run.RunId,
                Provider = lease.Provider,
                Runtime = lease.Runtime,
                Region = lease.Region,
                Status = input.Status,
                ProviderCost = cost.ProviderCost,
                Fees = cost.Fees,
                Total = cost.Total,
                AutopilotFee = cost.AutopilotFee,
                ShieldFee = cost.ShieldFee,
                BaselineProvider = input.Route?.Baseline?.Provider,
                BaselineCost = cost.BaselineCost,
                Savings = cost.Savings,
                MonitoredSeconds = SettleRouting.ShieldBilled(ShieldOf(input))?.MonitoredSeconds,
                ShieldCoverage = ShieldOf(input)?.Coverage,
                CarbonGrams = routing.CarbonGrams(lease, workload, input.Result, input.FinishedAt),
                SecurityTier = request.SecurityTier,
                Requirements = workload.Requirements,
                Files = workload.Files,
                PreferredRegion = request.Constraints?.PreferredRegion,
                DurationMs = input.Result?.WallTimeMs ?? 0,
                CpuMs = input.Result?.CpuTimeMs ?? 0,
                PeakMemoryBytes = input.Result?.PeakMemoryBytes ?? 0,
                LatencyMs = (long)(input.FinishedAt - run.SubmittedAt).TotalMilliseconds,
                SettledAt = time.GetUtcNow(),
                Language = request.Language,
                CodeLength = request.CodeLength,
                Cpu = request.Cpu,
                MemoryMiB = request.Memory,
                TimeoutMs = request.Timeout,
                IsolationLevel = request.IsolationLevel,
                Strategy = request.Strategy,
                PredictedCostUsd = input.Route?.Chosen.PredictedCostUsd,
                PredictedLatencyMs = input.Route?.Chosen.PredictedLatencyMs,
            },
            cancellationToken);
        if (!added)
        {
            logger.LogInformation("Run {RunId} was already billed; settle is idempotent", run.RunId);
        }

        return entry;
    }

    /// <summary>
    /// A run whose execution reports a weaker isolation than the run required did not succeed, whatever its exit code: it
    /// settles failed (never billed or attested as a success). Edge results are refused before this; this holds for all.
    /// </summary>
    private static SettleInput RequireIsolation(SettleInput input) =>
        input is { Status: RunStatus.Succeeded, Result.Isolation: { } got } && got < input.Run.Intent.IsolationLevel
            ? input with
            {
                Status = RunStatus.Failed,
                Error = new RunError(
                    ErrorCodes.IsolationBelowRequired,
                    $"the run required isolation '{Level(input.Run.Intent.IsolationLevel)}' but ran under '{input.Result.Runtime}' (isolation '{Level(got)}')"),
            }
            : input;

    private static string Level(IsolationLevel level) => level.ToString().ToLowerInvariant();

    /// <summary>
    /// The run's Shield report: Monitor's; for a Shield run that never reached Monitor (stopped or failed before its
    /// execution returned), coverage none and why, so every Shield run's result says what Shield did.
    /// </summary>
    private static ShieldReport? ShieldOf(SettleInput input) =>
        input.Monitor?.Shield
        ?? (input.Run.Intent.SecurityTier == SecurityTier.Shield
            ? new ShieldReport
            {
                Coverage = ShieldCoverageLevel.None,
                CoverageReason = $"no execution result to report on: the run ended {input.Status.ToString().ToLowerInvariant()} before its execution returned",
            }
            : null);

    /// <summary>The resources a provider bills by (code and files are not part of any price).</summary>
    private static ExecutionSpec BilledSpec(RunIntent intent) => new()
    {
        Language = intent.Language,
        Code = "",
        Cpu = intent.Cpu,
        MemoryMiB = intent.Memory,
        Timeout = TimeSpan.FromMilliseconds(intent.Timeout),
        IsolationLevel = intent.IsolationLevel,
    };

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
