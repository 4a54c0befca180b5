using System.Security.Cryptography;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Security.Dsse;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;
using Sandstorm.Security.Verification;

namespace Sandstorm.Security.Compliance;

/// <summary>
/// Offline verification of a signed compliance report, the way a run bundle is verified: the report's signature; the
/// tree head's signature; the consistency proof across the period; for every run, its envelope's signature, its inclusion
/// in the signed head, and that what the report says of it is what its signed predicate says; and the summary and the
/// controls' references against the runs.
/// </summary>
public static class ComplianceReportVerifier
{
    /// <summary>Runs every check; never throws on bad input, reports it. <paramref name="trustedPublicKeyPem"/>: as for bundles.</summary>
    public static BundleVerificationResult Verify(ComplianceReportBundle bundle, string? trustedPublicKeyPem)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        var passed = new List<string>();
        var failures = new List<string>();
        var warnings = new List<string>();
        if (trustedPublicKeyPem is null)
        {
            warnings.Add("signatures checked against the keys embedded in the report; pass a trusted key (--key or --control-plane) to know who signed");
        }

        using var reportKey = Load(trustedPublicKeyPem ?? bundle.PublicKeyPem, failures);
        if (bundle.Envelope.PayloadType != ComplianceReport.PayloadType)
        {
            failures.Add($"envelope payload type is '{bundle.Envelope.PayloadType}', expected '{ComplianceReport.PayloadType}'");
        }

        if (reportKey is not null)
        {
            Check(DsseV1.Verify(bundle.Envelope, reportKey), "report signature", "report signature invalid", passed, failures);
        }

        ComplianceReport? report;
        try
        {
            report = JsonSerializer.Deserialize<ComplianceReport>(Convert.FromBase64String(bundle.Envelope.Payload), SandstormJson.Options);
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            failures.Add($"the payload is not a compliance report: {e.Message}");
            return new BundleVerificationResult(passed, failures, warnings);
        }

        if (report is null || report.Type != ComplianceReport.TypeV1)
        {
            failures.Add($"the payload is not a {ComplianceReport.TypeV1} report");
            return new BundleVerificationResult(passed, failures, warnings);
        }

        var keys = new Dictionary<string, ECDsa>(StringComparer.Ordinal);
        try
        {
            ECDsa? KeyFor(string keyId)
            {
                if (trustedPublicKeyPem is not null)
                {
                    return reportKey;
                }

                if (!keys.TryGetValue(keyId, out var key))
                {
                    var pem = report.Keys.FirstOrDefault(k => k.KeyId == keyId)?.PublicKeyPem;
                    key = pem is null ? null! : Load(pem, failures)!;
                    keys[keyId] = key;
                }

                return key;
            }

            var log = report.Log;
            var head = log.EndTreeHead;
            if (KeyFor(head.KeyId) is { } headKey)
            {
                Check(head.Verify(headKey), "tree head signature", "tree head signature invalid", passed, failures);
            }
            else
            {
                failures.Add($"no key for the tree head's key id {head.KeyId}");
            }

            var root = Decode(head.RootHash);
            var startRoot = Decode(log.StartRootHash);
            var consistency = log.Consistency.Hashes.Select(Decode).ToList();
            Check(
                root is not null && startRoot is not null && consistency.All(h => h is not null)
                    && log.Consistency.FromSize == log.StartSize && log.Consistency.ToSize == head.TreeSize
                    && MerkleProofs.VerifyConsistency(log.StartSize, head.TreeSize, startRoot, root, consistency!),
                $"consistency of the log from size {log.StartSize} to {head.TreeSize}",
                "the consistency proof does not tie the log before the period to the signed head",
                passed,
                failures);

            var runFailures = 0;
            foreach (var run in report.Runs)
            {
                var before = failures.Count;
                VerifyRun(report, run, root, KeyFor(run.KeyId), failures);
                runFailures += failures.Count > before ? 1 : 0;
            }

            if (report.Runs.Count > 0 && runFailures == 0)
            {
                passed.Add($"{report.Runs.Count} run(s): envelope signatures, inclusion in the signed head, statements match the report");
            }

            var summary = ComplianceReportService.Summarize(report.Runs);
            Check(
                summary.Runs == report.Summary.Runs && summary.ShieldRuns == report.Summary.ShieldRuns && summary.ShieldRunsCovered == report.Summary.ShieldRunsCovered
                    && summary.Quarantined == report.Summary.Quarantined && summary.Findings == report.Summary.Findings
                    && summary.Isolation.OrderBy(p => p.Key).SequenceEqual(report.Summary.Isolation.OrderBy(p => p.Key))
                    && summary.Runtimes.OrderBy(p => p.Key).SequenceEqual(report.Summary.Runtimes.OrderBy(p => p.Key)),
                "summary recomputed from the runs",
                "the summary does not match the runs",
                passed,
                failures);

            var indices = report.Runs.Select(r => r.LogIndex).ToHashSet();
            var dangling = report.Controls.SelectMany(c => c.LogIndices.Where(i => !indices.Contains(i)).Select(i => $"{c.Id} → {i}")).ToList();
            Check(dangling.Count == 0, "controls cite only runs of the report", "controls cite log entries that are not in the report: " + string.Join(", ", dangling), passed, failures);
            if (!ComplianceStandards.All.TryGetValue(report.Standard, out var standard)
                || !standard.Controls.Select(c => c.Id).SequenceEqual(report.Controls.Select(c => c.Id)))
            {
                failures.Add($"the controls are not those of standard '{report.Standard}'");
            }
        }
        finally
        {
            foreach (var key in keys.Values.Where(k => k is not null && !ReferenceEquals(k, reportKey)))
            {
                key.Dispose();
            }
        }

        return new BundleVerificationResult(passed, failures, warnings);
    }

    private static void VerifyRun(ComplianceReport report, ComplianceRun run, byte[]? root, ECDsa? key, List<string> failures)
    {
        var what = $"run {run.RunId} (log index {run.LogIndex})";
        if (key is null || !DsseV1.Verify(run.Envelope, key))
        {
            failures.Add($"{what}: envelope signature invalid");
        }

        var path = run.InclusionProof.Hashes.Select(Decode).ToList();
        if (root is null || path.Any(p => p is null) || run.InclusionProof.LeafIndex != run.LogIndex
            || run.InclusionProof.TreeSize != report.Log.EndTreeHead.TreeSize
            || !MerkleProofs.VerifyInclusion(MerkleHash.Leaf(run.Envelope.ToCanonicalJson()), run.LogIndex, run.InclusionProof.TreeSize, path!, root))
        {
            failures.Add($"{what}: not included in the signed tree head");
        }

        if (run.LogIndex < report.Log.StartSize)
        {
            failures.Add($"{what}: logged before the period's start size {report.Log.StartSize}");
        }

        RunProvenancePredicate predicate;
        try
        {
            predicate = ComplianceReportService.PredicateOf(run.Envelope);
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            failures.Add($"{what}: envelope holds no run statement ({e.Message})");
            return;
        }

        var shield = predicate.Shield;
        if (predicate.RunId != run.RunId || predicate.TenantId != report.TenantId || predicate.Execution.Provider != run.Provider
            || predicate.Execution.Runtime != run.Runtime || predicate.Execution.IsolationLevel != run.IsolationLevel
            || predicate.Request.SecurityTier != run.SecurityTier || shield?.Coverage != run.ShieldCoverage
            || (shield?.Quarantined == true) != run.Quarantined || (shield?.Findings.Count ?? 0) != run.Findings.Count
            || predicate.SecurityVerdict != run.Verdict)
        {
            failures.Add($"{what}: the report says otherwise than its signed statement");
        }
    }

    private static ECDsa? Load(string pem, List<string> failures)
    {
        try
        {
            return EcKeys.ImportPublicPem(pem);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            failures.Add($"public key unusable: {e.Message}");
            return null;
        }
    }

    private static byte[]? Decode(string base64) => EcKeys.TryDecodeBase64(base64, out var bytes) && bytes.Length == MerkleHash.Size ? bytes : null;

    private static void Check(bool ok, string name, string failure, List<string> passed, List<string> failures)
    {
        if (ok)
        {
            passed.Add(name);
        }
        else
        {
            failures.Add(failure);
        }
    }
}
