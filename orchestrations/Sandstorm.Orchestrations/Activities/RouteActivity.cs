using Microsoft.DurableTask;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers;
using Sandstorm.Routing;

namespace Sandstorm.Orchestrations.Activities;

/// <summary>Step 1: picks the provider, runtime and region (chosen first, fallbacks after) or says which constraint binds.</summary>
public sealed class RouteActivity(RoutingInputs inputs, IRunRouter router)
    : TaskActivity<RunTicket, RouteOutcome>
{
    public override Task<RouteOutcome> RunAsync(TaskActivityContext context, RunTicket input) => ExecuteAsync(input, CancellationToken.None);

    public async Task<RouteOutcome> ExecuteAsync(RunTicket input, CancellationToken cancellationToken)
    {
        try
        {
            var context = await inputs.ContextAsync(input.RunId, input.TenantId, Workload.From(input.Intent), offer: null, cancellationToken);
            return new RouteOutcome(await router.RouteAsync(context, cancellationToken), null);
        }
        catch (NoCandidateException e)
        {
            return new RouteOutcome(null, new RunError(e.Code, e.Message));
        }
    }
}
