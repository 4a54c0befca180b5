using Sandstorm.Core.Contracts;
using Sandstorm.Security.Dsse;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Security.Compliance;

/// <summary>
/// Compliance evidence of one tenant over a period, built from the signed transparency log (docs/shield.md, "Compliance
/// reports"): each control of the standard by its own identifier with the evidence behind it, every run of the period with
/// its provenance envelope and inclusion proof, the signed tree head at the end and a consistency proof from the log as it
/// stood before the period. Signed as a whole (DSSE, <see cref="PayloadType"/>); <c>sandstorm verify</c> checks it offline.
/// </summary>
public sealed record ComplianceReport
{
    public const string TypeV1 = "https://sandstorm.dev/compliance/report/v1";

    /// <summary>DSSE payload type of a signed report.</summary>
    public const string PayloadType = "application/vnd.sandstorm.compliance-report+json";

    public string Type { get; init; } = TypeV1;

    /// <summary><c>soc2</c>, <c>hipaa</c> or <c>pci-dss</c>.</summary>
    public required string Standard { get; init; }

    public required string StandardName { get; init; }

    public required string TenantId { get; init; }

    /// <summary>The period: runs settled in [from, to).</summary>
    public required DateTimeOffset From { get; init; }

    public required DateTimeOffset To { get; init; }

    public required DateTimeOffset GeneratedAt { get; init; }

    public required ComplianceSummary Summary { get; init; }

    public required IReadOnlyList<ComplianceControl> Controls { get; init; }

    public required ComplianceLogEvidence Log { get; init; }

    /// <summary>Every key that signed an envelope of the period or the tree head, by id.</summary>
    public required IReadOnlyList<ComplianceKey> Keys { get; init; }

    public required IReadOnlyList<ComplianceRun> Runs { get; init; }

    /// <summary>Runs billed in the period with no provenance in the log (they never executed: nothing to attest).</summary>
    public IReadOnlyList<string> UnattestedRuns { get; init; } = [];

    /// <summary>
    /// Findings of the period from the findings store (Falco alerts included) — signed with this report, but not leaves of
    /// the log: those attested by the log are inside the runs' envelopes.
    /// </summary>
    public IReadOnlyList<ComplianceStoredFinding> StoredFindings { get; init; } = [];
}

/// <summary>Counts over the period's runs (recomputed from <see cref="ComplianceReport.Runs"/> by the verifier).</summary>
public sealed record ComplianceSummary
{
    public int Runs { get; init; }

    public int ShieldRuns { get; init; }

    /// <summary>Shield runs whose monitoring was real (full or partial coverage).</summary>
    public int ShieldRunsCovered { get; init; }

    public int Quarantined { get; init; }

    /// <summary>Findings inside the runs' provenance.</summary>
    public int Findings { get; init; }

    /// <summary>Runs by the isolation level the runtime actually gave.</summary>
    public IReadOnlyDictionary<string, int> Isolation { get; init; } = new Dictionary<string, int>();

    /// <summary>Runs by <c>provider/runtime</c>.</summary>
    public IReadOnlyDictionary<string, int> Runtimes { get; init; } = new Dictionary<string, int>();
}

/// <summary>One control of the standard, by its own identifier, with the evidence this period gives for it.</summary>
public sealed record ComplianceControl
{
    /// <summary>The standard's identifier (<c>CC7.2</c>, <c>§164.312(b)</c>, <c>10.3.4</c>).</summary>
    public required string Id { get; init; }

    public required string Title { get; init; }

    /// <summary>What Sandstorm's evidence shows about it, statement by statement (counts from the runs below).</summary>
    public required IReadOnlyList<string> Evidence { get; init; }

    /// <summary>What the evidence does not cover (the customer's own controls, runs without monitoring...).</summary>
    public IReadOnlyList<string> Gaps { get; init; } = [];

    /// <summary>Log indices of the runs the evidence draws on.</summary>
    public IReadOnlyList<long> LogIndices { get; init; } = [];
}

/// <summary>The log evidence of the period: where it started, the signed head at the end, and the proof between them.</summary>
public sealed record ComplianceLogEvidence
{
    public required string LogName { get; init; }

    /// <summary>Size of the log before the period's first run (its lowest index).</summary>
    public required long StartSize { get; init; }

    /// <summary>Base64 root of the log at <see cref="StartSize"/>: compare with a head kept from before (a previous report's end).</summary>
    public required string StartRootHash { get; init; }

    public required SignedTreeHead EndTreeHead { get; init; }

    /// <summary>Proof that the end head extends the log at <see cref="StartSize"/> (nothing before the period was rewritten).</summary>
    public required ConsistencyProof Consistency { get; init; }
}

/// <summary>A public key by id.</summary>
public sealed record ComplianceKey(string KeyId, string PublicKeyPem);

/// <summary>One run of the period as its signed provenance states it, with the envelope and its place in the log.</summary>
public sealed record ComplianceRun
{
    public required string RunId { get; init; }

    public required long LogIndex { get; init; }

    public DateTimeOffset CompletedAt { get; init; }

    public required string Provider { get; init; }

    public required string Runtime { get; init; }

    public IsolationLevel IsolationLevel { get; init; }

    public SecurityTier SecurityTier { get; init; }

    /// <summary>Shield's coverage of the run; null when it was not a Shield run.</summary>
    public ShieldCoverageLevel? ShieldCoverage { get; init; }

    public string? Verdict { get; init; }

    public bool Quarantined { get; init; }

    public IReadOnlyList<ShieldFinding> Findings { get; init; } = [];

    public required string KeyId { get; init; }

    /// <summary>The run's provenance envelope, exactly as logged (its canonical JSON is the leaf).</summary>
    public required DsseEnvelope Envelope { get; init; }

    /// <summary>Inclusion of the envelope in the end head's tree.</summary>
    public required InclusionProof InclusionProof { get; init; }
}

/// <summary>A finding from the findings store: what it was matched to and what was done.</summary>
public sealed record ComplianceStoredFinding(ShieldFinding Finding, string? RunId, string Action);

/// <summary>A signed report: the envelope (payload: the report's JSON) and the key that signed it.</summary>
public sealed record ComplianceReportBundle
{
    public required DsseEnvelope Envelope { get; init; }

    public required string KeyId { get; init; }

    public required string PublicKeyPem { get; init; }
}
