using Sandstorm.Core.Contracts;
using Sandstorm.Security.Provenance;

namespace Sandstorm.Orchestrations;

/// <summary>Signs and logs the provenance of every run that executed (nothing ran, nothing to prove).</summary>
public sealed class ProvenanceRecorder(IProvenanceService provenance, RunPayloads payloads) : IRunRecorder
{
    public async Task<ProvenanceRef?> RecordAsync(SettleInput settle, RunResult result, CancellationToken cancellationToken)
    {
        if (settle.Result is not { } executed || settle.Lease is not { } lease)
        {
            return null;
        }

        var record = await provenance.RecordAsync(
            new ProvenanceInput
            {
                RunId = settle.Run.RunId,
                TenantId = settle.Run.TenantId,
                InstanceId = settle.Run.RunId,
                Intent = settle.Run.Intent,
                Stdout = await payloads.GetTextAsync(executed.Stdout, cancellationToken),
                Stderr = await payloads.GetTextAsync(executed.Stderr, cancellationToken),
                Route = settle.Route,
                Provider = lease.Provider,
                Runtime = executed.Runtime,
                Region = lease.Region,
                // The level the execution really had where it was reported (local runtimes, edge agents); else the
                // provider's, which placement matched to the level asked for.
                IsolationLevel = executed.Isolation ?? settle.Run.Intent.IsolationLevel,
                StartedAt = settle.StartedAt,
                CompletedAt = settle.FinishedAt,
                Cost = result.Cost,
                ExitCode = executed.ExitCode,
                SecurityVerdict = settle.Monitor?.Verdict,
                Shield = result.Shield,
            },
            cancellationToken);
        return record.ToRef();
    }
}
