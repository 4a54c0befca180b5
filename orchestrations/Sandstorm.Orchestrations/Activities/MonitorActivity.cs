using Microsoft.DurableTask;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Observability;

namespace Sandstorm.Orchestrations.Activities;

/// <summary>
/// Step 4: turns usage into findings. Basic tier records resource findings only; Shield tier also applies the
/// runtime security rules to the events the runtime reported (none are reported by the local provider yet).
/// </summary>
public sealed class MonitorActivity : TaskActivity<MonitorInput, MonitorOutcome>
{
    public override Task<MonitorOutcome> RunAsync(TaskActivityContext context, MonitorInput input) => ExecuteAsync(input, CancellationToken.None);

    public Task<MonitorOutcome> ExecuteAsync(MonitorInput input, CancellationToken cancellationToken) =>
        RunObservability.TraceAsync(ObservabilityNames.Spans.Monitor, input.Run, () => MonitorAsync(input, cancellationToken), (span, o) => RunObservability.Monitored(span, o));

    private Task<MonitorOutcome> MonitorAsync(MonitorInput input, CancellationToken cancellationToken)
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

        var verdict = findings.Count == 0 ? "clean" : "resource-limits";
        return Task.FromResult(new MonitorOutcome(verdict, findings, Quarantine: false));
    }
}
