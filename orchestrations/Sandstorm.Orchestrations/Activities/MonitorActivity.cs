using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Observability;
using Sandstorm.Storage.Shield;

namespace Sandstorm.Orchestrations.Activities;

/// <summary>
/// Step 4: the verdict. Resource findings (memory, timeout, truncation) for every run; for a Shield run, what Shield's
/// runtime monitor saw while the code ran (local and edge runtimes watch every execution during it, and kill the sandbox
/// within milliseconds of a finding at or above the tenant's threshold): the run is quarantined when the sandbox was.
/// A Falco alert that killed the sandbox (any tier) is in the same report. Clouds without runtime monitoring answer
/// coverage none, honestly. The run's findings are stored (<c>GET /v1/shield/findings</c>), and its sandbox's host-side id
/// is recorded so an alert that arrives after the run still finds it.
/// </summary>
public sealed class MonitorActivity(ShieldStore shield, TimeProvider time, ILogger<MonitorActivity> logger) : TaskActivity<MonitorInput, MonitorOutcome>
{
    public override Task<MonitorOutcome> RunAsync(TaskActivityContext context, MonitorInput input) => ExecuteAsync(input, CancellationToken.None);

    public Task<MonitorOutcome> ExecuteAsync(MonitorInput input, CancellationToken cancellationToken) =>
        RunObservability.TraceAsync(ObservabilityNames.Spans.Monitor, input.Run, () => MonitorAsync(input, cancellationToken), (span, o) => RunObservability.Monitored(span, o));

    private async Task<MonitorOutcome> MonitorAsync(MonitorInput input, CancellationToken cancellationToken)
    {
        var r = input.Result;
        var findings = new List<string>();
        if (r.OomKilled)
        {
            findings.Add("memory limit reached");
        }

        if (r.TimedOut)
        {
            findings.Add("killed at its timeout");
        }

        if (r.StdoutTruncated || r.StderrTruncated)
        {
            findings.Add("output exceeded its cap and was truncated");
        }

        var report = ReportOf(input);
        foreach (var finding in report?.Findings ?? [])
        {
            findings.Add($"{finding.Rule} ({finding.Priority}): {finding.Output}");
        }

        if (r.ExecutionId is { } executionId)
        {
            await shield.RecordExecutionAsync(new ShieldExecutionRecord(executionId, input.Run.TenantId, input.Run.RunId, input.Lease.Provider), cancellationToken);
        }

        if (report is { Findings.Count: > 0 })
        {
            // Keyed by event time and finding id: a retried Monitor, or an alert stored when it arrived, is overwritten
            // with the same finding now tied to its run.
            foreach (var finding in report.Findings)
            {
                await shield.PutFindingAsync(
                    new ShieldFindingRecord
                    {
                        TenantId = input.Run.TenantId,
                        Finding = finding,
                        RunId = input.Run.RunId,
                        Provider = input.Lease.Provider,
                        Action = finding.Quarantined ? "killed" : "reported",
                        ReceivedAt = finding.DetectedAt == default ? time.GetUtcNow() : finding.DetectedAt,
                    },
                    cancellationToken);
            }
        }

        var quarantine = report?.Quarantined == true;
        if (quarantine)
        {
            var by = report!.QuarantineFinding;
            logger.LogWarning(
                "Run {RunId} quarantined by Shield: {Rule} ({Priority}), sandbox killed {Latency} ms after the event",
                input.Run.RunId, by?.Rule, by?.Priority, by?.QuarantineLatencyMs);
        }

        var verdict = quarantine ? "quarantined"
            : report is { Findings.Count: > 0 } ? "flagged"
            : r.OomKilled || r.TimedOut || r.StdoutTruncated || r.StderrTruncated ? "resource-limits"
            : "clean";
        return new MonitorOutcome(verdict, findings, quarantine) { Shield = report };
    }

    /// <summary>The run's Shield report: the runtime's own, or for a Shield run where nothing watched, coverage none and why.</summary>
    private static ShieldReport? ReportOf(MonitorInput input)
    {
        if (input.Result.Shield is { } seen)
        {
            return seen;
        }

        return input.Run.Intent.SecurityTier == SecurityTier.Shield
            ? new ShieldReport
            {
                Coverage = ShieldCoverageLevel.None,
                CoverageReason = $"provider '{input.Lease.Provider}' gives no runtime monitoring (no eBPF there); Falco alerts sent to /v1/shield/alerts are still matched to its runs",
            }
            : null;
    }
}
