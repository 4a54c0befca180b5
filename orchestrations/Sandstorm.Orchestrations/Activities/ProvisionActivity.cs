using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Observability;
using Sandstorm.Providers;
using Sandstorm.Storage;

namespace Sandstorm.Orchestrations.Activities;

/// <summary>Step 2: acquires a sandbox on one candidate. Transient failures throw (and are retried); others are returned.</summary>
public sealed class ProvisionActivity(IProviderCatalog catalog, RunStore runs, ILogger<ProvisionActivity> logger)
    : TaskActivity<ProvisionInput, ProvisionOutcome>
{
    public override Task<ProvisionOutcome> RunAsync(TaskActivityContext context, ProvisionInput input) => ExecuteAsync(input, CancellationToken.None);

    public Task<ProvisionOutcome> ExecuteAsync(ProvisionInput input, CancellationToken cancellationToken) =>
        RunObservability.TraceAsync(ObservabilityNames.Spans.Provision, input.Run, () => ProvisionAsync(input, cancellationToken), (span, o) => RunObservability.Provisioned(span, input, o));

    private async Task<ProvisionOutcome> ProvisionAsync(ProvisionInput input, CancellationToken cancellationToken)
    {
        var (run, candidate) = (input.Run, input.Candidate);
        var intent = run.Intent;
        var provider = catalog.Get(candidate.Provider);
        try
        {
            var lease = await provider.ProvisionAsync(
                new ProvisionRequest(
                    run.RunId,
                    run.TenantId,
                    candidate.Runtime,
                    candidate.Region,
                    intent.Language,
                    intent.Cpu,
                    intent.Memory,
                    TimeSpan.FromMilliseconds(intent.Timeout),
                    intent.IsolationLevel)
                {
                    RequireShieldCoverage = intent.SecurityTier == SecurityTier.Shield && intent.Constraints?.RequireShieldCoverage == true,
                    BootcImage = intent.BootcImage,
                },
                cancellationToken);
            await runs.MarkRunningAsync(run.TenantId, run.RunId, candidate, cancellationToken);
            return new ProvisionOutcome(lease, null);
        }
        catch (ProviderException e) when (!e.Transient)
        {
            logger.LogWarning("Provisioning run {RunId} on {Candidate} failed: {Code} {Message}", run.RunId, candidate.Key, e.Code, e.Message);
            return new ProvisionOutcome(null, new RunError(e.Code, $"{candidate.Provider}: {e.Message}"));
        }
    }
}
