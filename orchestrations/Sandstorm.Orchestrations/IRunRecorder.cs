using Sandstorm.Core.Contracts;

namespace Sandstorm.Orchestrations;

/// <summary>Records a settled run's signed provenance (statement, DSSE envelope, transparency-log entry). Idempotent per run.</summary>
public interface IRunRecorder
{
    /// <summary>Returns where the provenance lives, or null when the run produced nothing to prove (it never executed).</summary>
    Task<ProvenanceRef?> RecordAsync(SettleInput settle, RunResult result, CancellationToken cancellationToken);
}
