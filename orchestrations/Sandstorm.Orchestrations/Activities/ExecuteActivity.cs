using Microsoft.DurableTask;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Observability;
using Sandstorm.Providers;
using Sandstorm.Storage.Shield;

namespace Sandstorm.Orchestrations.Activities;

/// <summary>
/// Step 3: runs the code in the leased sandbox, or dispatches it to an edge agent and returns the job to wait for. The
/// only step that reads the request. It is never retried once the code may have started: a failure is final unless the
/// provider proves the code never started (<see cref="ExecuteOutcome.NeverStarted"/>); an edge dispatch is idempotent
/// (the job id is the run's), so a dispatch that failed may always be tried again.
/// </summary>
public sealed class ExecuteActivity(IProviderCatalog catalog, RunPayloads payloads, ShieldStore shield, IRunJournal journal)
    : TaskActivity<ExecuteInput, ExecuteOutcome>
{
    public override Task<ExecuteOutcome> RunAsync(TaskActivityContext context, ExecuteInput input) => ExecuteAsync(input, CancellationToken.None);

    public Task<ExecuteOutcome> ExecuteAsync(ExecuteInput input, CancellationToken cancellationToken) =>
        RunObservability.TraceAsync(ObservabilityNames.Spans.Execute, input.Run, () => RunCodeAsync(input, cancellationToken), (span, o) => RunObservability.Executed(span, input, o));

    private async Task<ExecuteOutcome> RunCodeAsync(ExecuteInput input, CancellationToken cancellationToken)
    {
        var request = await payloads.GetRequestAsync(input.Run.RunId, input.Request, cancellationToken);
        var spec = RunPayloads.SpecOf(request) with { RunId = input.Run.RunId, TenantId = input.Run.TenantId };
        if (request.SecurityTier == SecurityTier.Shield)
        {
            // The tenant's own rules and threshold travel with the spec to wherever it runs (this host, an edge agent).
            var rules = await shield.GetRulesAsync(input.Run.TenantId, cancellationToken);
            spec = spec with
            {
                Shield = new ShieldSpec
                {
                    TenantId = input.Run.TenantId,
                    Rules = rules.Yaml.Length == 0 ? null : rules.Yaml,
                    QuarantineThreshold = rules.QuarantineThreshold,
                    EgressAllowed = false,
                },
            };
        }

        var provider = catalog.Get(input.Lease.Provider);
        if (provider is IDispatchingProvider dispatching)
        {
            try
            {
                return new ExecuteOutcome(null, null, await dispatching.DispatchAsync(input.Lease, input.Run.RunId, spec, cancellationToken));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Nothing runs until an agent leases the job, and a second dispatch finds the first one's job.
                return new ExecuteOutcome(null, new RunError(ErrorCodes.ExecutionFailed, $"{input.Lease.Provider}: dispatch failed: {e.Message}")) { NeverStarted = true };
            }
        }

        // Past this point the code may run: a host that lost this run's state in a crash must not start it again.
        if (!await journal.StartingAsync(input.Run.RunId, cancellationToken))
        {
            return new ExecuteOutcome(null, new RunError(
                ErrorCodes.ExecutionInterrupted,
                $"{input.Lease.Provider}: the host stopped while this run's code may have been running; it is not run again"));
        }

        ExecutionResult result;
        try
        {
            result = await provider.ExecuteAsync(input.Lease, spec, cancellationToken);
        }
        catch (ProviderException e)
        {
            if (e.NeverStarted)
            {
                await journal.NeverStartedAsync(input.Run.RunId, cancellationToken);
            }

            return new ExecuteOutcome(null, new RunError(e.Code, $"{e.Provider}: {e.Message}")) { NeverStarted = e.NeverStarted };
        }

        return new ExecuteOutcome(await payloads.SummarizeAsync(input.Run.TenantId, input.Run.RunId, result, cancellationToken), null);
    }
}
