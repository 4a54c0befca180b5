using Sandstorm.Core.Contracts;
using Sandstorm.Security.Dsse;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Security.Provenance;

/// <summary>Where a run's provenance was stored and logged.</summary>
public sealed record ProvenanceRecord(string EnvelopeUrl, string BlobName, long LogIndex, string KeyId)
{
    /// <summary>The reference a <see cref="RunResult"/> carries.</summary>
    public ProvenanceRef ToRef() => new(EnvelopeUrl, LogIndex);
}

/// <summary>Everything needed to verify a run offline: envelope, key, and its place in the signed log.</summary>
public sealed record ProvenanceBundle
{
    public required DsseEnvelope Envelope { get; init; }

    public required string KeyId { get; init; }

    /// <summary>SubjectPublicKeyInfo PEM of the signing key (of envelope and tree head).</summary>
    public required string PublicKeyPem { get; init; }

    public required long LogIndex { get; init; }

    public required InclusionProof InclusionProof { get; init; }

    public required SignedTreeHead TreeHead { get; init; }

    /// <summary>PEM of the key that signed the tree head, when it is not the envelope's (after a key rotation).</summary>
    public string? TreeHeadPublicKeyPem { get; init; }
}
