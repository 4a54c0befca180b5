using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Security.Provenance;

/// <summary>Signed provenance of runs and the transparency log they go into; the library behind Settle and the log endpoints.</summary>
public interface IProvenanceService
{
    /// <summary>Builds, signs, stores and logs the provenance of a settled run. Idempotent per run id: a retry returns the first record and appends nothing.</summary>
    Task<ProvenanceRecord> RecordAsync(ProvenanceInput input, CancellationToken cancellationToken);

    /// <summary>Signs, stores and logs the provenance of a kept sandbox that has ended (every command in order). Idempotent per sandbox id.</summary>
    Task<ProvenanceRecord> RecordSandboxAsync(SandboxProvenanceInput input, CancellationToken cancellationToken);

    /// <summary>The verification bundle of a run, or null when the tenant has no such run.</summary>
    Task<ProvenanceBundle?> GetBundleAsync(string tenantId, string runId, CancellationToken cancellationToken);

    /// <summary>The current signed tree head.</summary>
    Task<SignedTreeHead> GetTreeHeadAsync(CancellationToken cancellationToken);

    /// <summary>Consistency proof between two sizes; <see cref="ArgumentOutOfRangeException"/> unless 0 ≤ from ≤ to ≤ current size.</summary>
    Task<ConsistencyProof> GetConsistencyProofAsync(long fromSize, long toSize, CancellationToken cancellationToken);

    /// <summary>The key that signs envelopes and tree heads now (for <c>GET /v1/log/key</c>).</summary>
    Task<SigningKey> GetPublicKeyAsync(CancellationToken cancellationToken);
}
