using Sandstorm.Core.Contracts;

namespace Sandstorm.Orchestrations;

/// <summary>Used until a signer is configured: records nothing, and the run result says so by having no provenance.</summary>
public sealed class NoProvenanceRecorder : IRunRecorder
{
    public Task<ProvenanceRef?> RecordAsync(SettleInput settle, RunRequest request, RunResult result, CancellationToken cancellationToken) =>
        Task.FromResult<ProvenanceRef?>(null);
}
