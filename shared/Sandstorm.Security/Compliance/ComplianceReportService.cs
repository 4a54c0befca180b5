using System.Globalization;
using System.Net;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Security.Dsse;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Security.Compliance;

/// <summary>What a report is built from: the tenant's runs of the period (by id) and its stored findings.</summary>
public sealed record ComplianceReportRequest
{
    public required string Standard { get; init; }

    public required string TenantId { get; init; }

    public required DateTimeOffset From { get; init; }

    public required DateTimeOffset To { get; init; }

    /// <summary>Runs of the tenant settled in the period (the ledger's); their evidence is read from the log.</summary>
    public required IReadOnlyList<string> RunIds { get; init; }

    public IReadOnlyList<ComplianceStoredFinding> StoredFindings { get; init; } = [];
}

/// <summary>
/// Builds and signs compliance reports from the transparency log: for each run its logged envelope (checked against its
/// leaf), the envelope's predicate as the run's evidence, an inclusion proof to one signed head read after every entry
/// was found, and a consistency proof from the log before the period's first entry to that head.
/// </summary>
public sealed class ComplianceReportService(ITransparencyLog log, IProvenanceSigner signer, BlobServiceClient blobs, TimeProvider time)
{
    /// <summary>Most runs one report holds (each carries its envelope): a busier period is asked for in parts.</summary>
    public const int MaxRuns = 2000;

    public async Task<(ComplianceReport Report, ComplianceReportBundle Bundle)> BuildAsync(ComplianceReportRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!ComplianceStandards.All.TryGetValue(request.Standard, out var standard))
        {
            throw new ArgumentException($"unknown standard '{request.Standard}'", nameof(request));
        }

        if (request.RunIds.Count > MaxRuns)
        {
            throw new ArgumentOutOfRangeException(nameof(request), $"the period holds {request.RunIds.Count} runs, more than {MaxRuns}: ask for a shorter one");
        }

        // Entries first, the head after: any head read after an entry was found covers it.
        var entries = new List<LogEntry>();
        var unattested = new List<string>();
        foreach (var runId in request.RunIds.Distinct(StringComparer.Ordinal))
        {
            var entry = await log.FindByRunAsync(runId, cancellationToken);
            if (entry is null || entry.TenantId != request.TenantId)
            {
                unattested.Add(runId);
            }
            else
            {
                entries.Add(entry);
            }
        }

        var head = await log.GetSignedTreeHeadAsync(cancellationToken);
        var container = blobs.GetBlobContainerClient(ProvenanceService.ContainerName);
        var runs = new List<ComplianceRun>();
        foreach (var entry in entries.OrderBy(e => e.Index))
        {
            var bytes = await DownloadAsync(container.GetBlobClient(entry.BlobName), cancellationToken)
                ?? throw new LogIntegrityException($"envelope blob {entry.BlobName} of log entry {entry.Index} is missing");
            if (!MerkleHash.Leaf(bytes).AsSpan().SequenceEqual(entry.LeafHash))
            {
                throw new LogIntegrityException($"envelope blob {entry.BlobName} does not match the leaf hash of log entry {entry.Index}");
            }

            var envelope = DsseEnvelope.Parse(bytes);
            runs.Add(RunOf(entry, envelope, await log.GetInclusionProofAsync(entry.Index, head.TreeSize, cancellationToken)));
        }

        var start = runs.Count == 0 ? head.TreeSize : runs.Min(r => r.LogIndex);
        var evidence = new ComplianceLogEvidence
        {
            LogName = head.LogName,
            StartSize = start,
            StartRootHash = await log.GetRootHashAsync(start, cancellationToken),
            EndTreeHead = head,
            Consistency = await log.GetConsistencyProofAsync(start, head.TreeSize, cancellationToken),
        };

        var keys = new List<ComplianceKey>();
        foreach (var keyId in runs.Select(r => r.KeyId).Append(head.KeyId).Distinct(StringComparer.Ordinal))
        {
            keys.Add(new ComplianceKey(keyId, (await signer.GetPublicKeyAsync(keyId, cancellationToken)).PublicKeyPem));
        }

        var report = new ComplianceReport
        {
            Standard = request.Standard,
            StandardName = standard.Name,
            TenantId = request.TenantId,
            From = request.From,
            To = request.To,
            GeneratedAt = time.GetUtcNow(),
            Summary = Summarize(runs),
            Controls = [.. standard.Controls.Select(c => Control(c, runs, unattested, request.StoredFindings, evidence))],
            Log = evidence,
            Keys = keys,
            Runs = runs,
            UnattestedRuns = unattested,
            StoredFindings = request.StoredFindings,
        };

        var payload = JsonSerializer.SerializeToUtf8Bytes(report, SandstormJson.Options);
        var signed = await DsseV1.SignAsync(signer, ComplianceReport.PayloadType, payload, cancellationToken);
        var key = await signer.GetPublicKeyAsync(signed.Signatures[0].KeyId, cancellationToken);
        return (report, new ComplianceReportBundle { Envelope = signed, KeyId = key.KeyId, PublicKeyPem = key.PublicKeyPem });
    }

    /// <summary>A run as its signed predicate states it.</summary>
    public static ComplianceRun RunOf(LogEntry entry, DsseEnvelope envelope, InclusionProof proof)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(envelope);
        var predicate = PredicateOf(envelope);
        return new ComplianceRun
        {
            RunId = entry.RunId,
            LogIndex = entry.Index,
            CompletedAt = predicate.Timings.CompletedAt,
            Provider = predicate.Execution.Provider,
            Runtime = predicate.Execution.Runtime,
            IsolationLevel = predicate.Execution.IsolationLevel,
            SecurityTier = predicate.Request.SecurityTier,
            ShieldCoverage = predicate.Shield?.Coverage,
            Verdict = predicate.SecurityVerdict,
            Quarantined = predicate.Shield?.Quarantined == true,
            Findings = predicate.Shield?.Findings ?? [],
            KeyId = entry.KeyId,
            Envelope = envelope,
            InclusionProof = proof,
        };
    }

    /// <summary>The run predicate inside a provenance envelope.</summary>
    public static RunProvenancePredicate PredicateOf(DsseEnvelope envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        return StatementBuilder.Parse(Convert.FromBase64String(envelope.Payload)).RunPredicate()
            ?? throw new JsonException("the statement has no run predicate");
    }

    /// <summary>The counts of a set of runs (the verifier recomputes them).</summary>
    public static ComplianceSummary Summarize(IReadOnlyList<ComplianceRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        return new ComplianceSummary
        {
            Runs = runs.Count,
            ShieldRuns = runs.Count(r => r.SecurityTier == SecurityTier.Shield),
            ShieldRunsCovered = runs.Count(r => r.SecurityTier == SecurityTier.Shield && r.ShieldCoverage is ShieldCoverageLevel.Full or ShieldCoverageLevel.Partial),
            Quarantined = runs.Count(r => r.Quarantined),
            Findings = runs.Sum(r => r.Findings.Count),
            Isolation = runs.GroupBy(r => Name(r.IsolationLevel)).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal),
            Runtimes = runs.GroupBy(r => r.Provider + "/" + r.Runtime).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal),
        };
    }

    private static ComplianceControl Control(ControlDefinition definition, IReadOnlyList<ComplianceRun> runs, IReadOnlyList<string> unattested, IReadOnlyList<ComplianceStoredFinding> stored, ComplianceLogEvidence log)
    {
        var evidence = new List<string>();
        var gaps = new List<string>();
        var indices = new SortedSet<long>();
        foreach (var kind in definition.Evidence)
        {
            var (said, missing, used) = Statements(kind, runs, unattested, stored, log);
            evidence.AddRange(said.Where(s => !evidence.Contains(s)));
            gaps.AddRange(missing.Where(s => !gaps.Contains(s)));
            indices.UnionWith(used.Select(r => r.LogIndex));
        }

        if (definition.Gap is { } gap)
        {
            gaps.Add(gap);
        }

        return new ComplianceControl { Id = definition.Id, Title = definition.Title, Evidence = evidence, Gaps = gaps, LogIndices = [.. indices] };
    }

    private static (List<string> Evidence, List<string> Gaps, IEnumerable<ComplianceRun> Runs) Statements(
        EvidenceKind kind, IReadOnlyList<ComplianceRun> runs, IReadOnlyList<string> unattested, IReadOnlyList<ComplianceStoredFinding> stored, ComplianceLogEvidence log)
    {
        var evidence = new List<string>();
        var gaps = new List<string>();
        var summary = Summarize(runs);
        switch (kind)
        {
            case EvidenceKind.Isolation:
                if (runs.Count == 0)
                {
                    evidence.Add("No run executed in the period.");
                    return (evidence, gaps, []);
                }

                evidence.Add($"{runs.Count} run(s) executed, each in its own sandbox; isolation actually applied: {Counts(summary.Isolation)}; by provider and runtime: {Counts(summary.Runtimes)}. "
                    + "Each run's signed provenance names the runtime and level that ran it.");
                var unisolated = runs.Count(r => r.IsolationLevel == IsolationLevel.None);
                if (unisolated > 0)
                {
                    gaps.Add($"{unisolated} run(s) ran with isolation 'none' (a plain process, by the tenant's opt-in).");
                }

                return (evidence, gaps, runs);

            case EvidenceKind.Egress:
                var own = runs.Where(r => r.Provider is "local" or "edge").ToList();
                var egress = runs.SelectMany(r => r.Findings).Count(f => f.Rule == "Outbound connection with egress denied");
                evidence.Add($"{own.Count} run(s) on the local host and edge agents ran with no network (bwrap, runc and podman in an empty network namespace; gVisor with --network=none); "
                    + $"Shield's 'Outbound connection with egress denied' rule fired {egress} time(s).");
                if (runs.Count > own.Count)
                {
                    gaps.Add($"{runs.Count - own.Count} run(s) on sandbox clouds used the provider's own network policy.");
                }

                return (evidence, gaps, own);

            case EvidenceKind.Monitoring:
                var shield = runs.Where(r => r.SecurityTier == SecurityTier.Shield).ToList();
                var full = shield.Count(r => r.ShieldCoverage == ShieldCoverageLevel.Full);
                var partial = shield.Count(r => r.ShieldCoverage == ShieldCoverageLevel.Partial);
                var none = shield.Count - full - partial;
                evidence.Add($"{shield.Count} Shield run(s) watched during execution by Shield's runtime monitor (eBPF tracepoints; gVisor's trace points): "
                    + $"{full} with full coverage, {partial} partial, {none} none.");
                var byRule = runs.SelectMany(r => r.Findings).GroupBy(f => f.Rule).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} ×{g.Count()}").ToList();
                evidence.Add(byRule.Count == 0
                    ? "No finding in the runs' signed provenance."
                    : $"{summary.Findings} finding(s) in the runs' signed provenance: {string.Join(", ", byRule)}.");
                if (stored.Count > 0)
                {
                    evidence.Add($"{stored.Count} finding(s) in the findings store for the period ({stored.Count(f => f.Finding.Detector == "falco")} from ingested Falco alerts), listed with this report.");
                }

                if (none > 0)
                {
                    gaps.Add($"{none} Shield run(s) had no runtime monitoring (a provider without eBPF, or a run that ended before its result); they paid no Shield fee.");
                }

                if (runs.Count > shield.Count)
                {
                    gaps.Add($"{runs.Count - shield.Count} basic-tier run(s) were not monitored at run time.");
                }

                return (evidence, gaps, shield);

            case EvidenceKind.Response:
                var quarantined = runs.Where(r => r.Quarantined).ToList();
                if (quarantined.Count == 0)
                {
                    evidence.Add("No run was quarantined in the period.");
                    return (evidence, gaps, []);
                }

                var latencies = quarantined.SelectMany(r => r.Findings).Where(f => f.Quarantined && f.QuarantineLatencyMs is not null).Select(f => f.QuarantineLatencyMs!.Value).Order().ToList();
                evidence.Add($"{quarantined.Count} run(s) quarantined on a finding at or above the tenant's threshold: every process of the sandbox killed"
                    + (latencies.Count > 0 ? $", {Ms(latencies[latencies.Count / 2])} ms (median) and {Ms(latencies[^1])} ms (most) from the event to the last process gone" : "")
                    + "; each settled as 'quarantined' with its finding in its signed provenance, its outputs kept as evidence (their digests are subjects of the statement).");
                return (evidence, gaps, quarantined);

            case EvidenceKind.AuditTrail:
                evidence.Add($"{runs.Count} signed in-toto statement(s) (DSSE, ES256), one per run, record the tenant, the request without code or secret values (code, files and outputs by SHA-256), "
                    + $"the route decision, provider, runtime, timings, cost and security verdict; signed by key(s) {string.Join(", ", runs.Select(r => r.KeyId).Distinct(StringComparer.Ordinal))}.");
                if (unattested.Count > 0)
                {
                    evidence.Add($"{unattested.Count} billed run(s) of the period have no provenance: they never executed.");
                }

                return (evidence, gaps, runs);

            case EvidenceKind.LogIntegrity:
                evidence.Add($"Every statement above is a leaf of the append-only Merkle transparency log '{log.LogName}' (RFC 6962/9162 hashing); "
                    + $"an inclusion proof of each to the signed tree head at size {log.EndTreeHead.TreeSize} ({log.EndTreeHead.Timestamp:u}, key {log.EndTreeHead.KeyId}) is included.");
                evidence.Add($"A consistency proof shows the log at size {log.EndTreeHead.TreeSize} extends the log at size {log.StartSize} (root {log.StartRootHash}): nothing logged before the period was rewritten.");
                return (evidence, gaps, runs);

            default:
                return (evidence, gaps, []);
        }
    }

    private static string Counts(IReadOnlyDictionary<string, int> counts) =>
        counts.Count == 0 ? "none" : string.Join(", ", counts.Select(c => $"{c.Key} ×{c.Value}"));

    private static string Ms(double value) => value.ToString("0.#", CultureInfo.InvariantCulture);

    private static string Name(IsolationLevel level) => level.ToString().ToLowerInvariant();

    private static async Task<byte[]?> DownloadAsync(BlobClient blob, CancellationToken cancellationToken)
    {
        try
        {
            return (await blob.DownloadContentAsync(cancellationToken)).Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.NotFound)
        {
            return null;
        }
    }
}
