using Microsoft.DurableTask;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers;

namespace Sandstorm.Orchestrations.Activities;

/// <summary>Step 3: runs the code in the leased sandbox, or dispatches it to an edge agent and returns the job to wait for.</summary>
public sealed class ExecuteActivity(IProviderCatalog catalog, RunPayloads payloads)
    : TaskActivity<ExecuteInput, ExecuteOutcome>
{
    public override Task<ExecuteOutcome> RunAsync(TaskActivityContext context, ExecuteInput input) => ExecuteAsync(input, CancellationToken.None);

    public async Task<ExecuteOutcome> ExecuteAsync(ExecuteInput input, CancellationToken cancellationToken)
    {
        var request = await payloads.GetRequestAsync(input.Run, cancellationToken);
        var spec = RunPayloads.SpecOf(request);
        var provider = catalog.Get(input.Lease.Provider);
        try
        {
            if (provider is IDispatchingProvider dispatching)
            {
                var jobId = await dispatching.DispatchAsync(input.Lease, input.Run.RunId, spec, cancellationToken);
                return new ExecuteOutcome(null, null, jobId);
            }

            var result = await provider.ExecuteAsync(input.Lease, spec, cancellationToken);
            return new ExecuteOutcome(await payloads.SummarizeAsync(input.Run, result, cancellationToken), null);
        }
        catch (ProviderException e) when (!e.Transient)
        {
            return new ExecuteOutcome(null, new RunError(e.Code, $"{e.Provider}: {e.Message}"));
        }
    }
}
