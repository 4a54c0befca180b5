using System.Security.Cryptography;
using System.Text.Json;
using Sandstorm.Security.Dsse;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Security.Verification;

/// <summary>What to check a bundle against, beyond the bundle itself.</summary>
public sealed record BundleVerificationOptions
{
    /// <summary>Trusted public key (SPKI PEM). Null falls back to the key embedded in the bundle, which proves integrity but not who signed.</summary>
    public string? TrustedPublicKeyPem { get; init; }

    public byte[]? Stdout { get; init; }

    public byte[]? Stderr { get; init; }

    public byte[]? Code { get; init; }

    /// <summary>Input files by the path used in the run.</summary>
    public IReadOnlyDictionary<string, byte[]>? Files { get; init; }
}

/// <summary>Outcome of a verification: each check that passed, each that failed (by name), and warnings.</summary>
public sealed record BundleVerificationResult(IReadOnlyList<string> Passed, IReadOnlyList<string> Failures, IReadOnlyList<string> Warnings)
{
    public bool Ok => Failures.Count == 0;
}

/// <summary>Offline verification of a provenance bundle: envelope signature, subject digests, log inclusion, tree head signature.</summary>
public static class BundleVerifier
{
    /// <summary>Runs every check; never throws on bad input, reports it.</summary>
    public static BundleVerificationResult Verify(ProvenanceBundle bundle, BundleVerificationOptions options)
    {
        var passed = new List<string>();
        var failures = new List<string>();
        var warnings = new List<string>();

        using var envelopeKey = LoadKey(options.TrustedPublicKeyPem ?? bundle.PublicKeyPem, failures);
        if (options.TrustedPublicKeyPem is null)
        {
            warnings.Add("signatures checked against the key embedded in the bundle; pass a trusted key (--key or --control-plane) to know who signed");
        }
        else if (Normalise(options.TrustedPublicKeyPem) != Normalise(bundle.PublicKeyPem))
        {
            warnings.Add("the bundle embeds a different key than the trusted one; the trusted key is used");
        }

        var envelope = bundle.Envelope;
        if (envelope.PayloadType != DsseV1.InTotoPayloadType)
        {
            failures.Add($"envelope payload type is '{envelope.PayloadType}', expected '{DsseV1.InTotoPayloadType}'");
        }

        if (envelopeKey is not null)
        {
            Check(DsseV1.Verify(envelope, envelopeKey), "envelope signature", "envelope signature invalid", passed, failures);
        }

        if (!envelope.Signatures.Any(s => s.KeyId == bundle.KeyId))
        {
            failures.Add("envelope key id does not match the bundle's key id");
        }

        var statement = ParseStatement(envelope, failures);
        if (statement is not null)
        {
            if (statement.Type != InTotoStatement.TypeV1)
            {
                failures.Add($"statement type '{statement.Type}' is not in-toto v1");
            }

            if (statement.PredicateType is not (RunProvenancePredicate.TypeV1 or SandboxProvenancePredicate.TypeV1))
            {
                warnings.Add($"unknown predicate type '{statement.PredicateType}'");
            }

            CheckSubject(statement, s => s == StatementBuilder.StdoutSubject, options.Stdout, "stdout", passed, failures);
            CheckSubject(statement, s => s == StatementBuilder.StderrSubject, options.Stderr, "stderr", passed, failures);
            CheckSubject(statement, s => s.StartsWith(StatementBuilder.CodePrefix, StringComparison.Ordinal), options.Code, "code", passed, failures);
            foreach (var (filePath, content) in options.Files ?? new Dictionary<string, byte[]>())
            {
                CheckSubject(statement, s => s == StatementBuilder.FilePrefix + filePath, content, $"file {filePath}", passed, failures);
            }
        }

        // The leaf is the canonical envelope: any change to payload or signature changes the leaf hash.
        var head = bundle.TreeHead;
        var proof = bundle.InclusionProof;
        var root = Decode(head.RootHash);
        var path = proof.Hashes.Select(Decode).ToList();
        var shapeOk = proof.LeafIndex == bundle.LogIndex && proof.TreeSize == head.TreeSize && root is not null && path.All(p => p is not null);
        Check(
            shapeOk && MerkleProofs.VerifyInclusion(MerkleHash.Leaf(envelope.ToCanonicalJson()), bundle.LogIndex, head.TreeSize, path!, root),
            "inclusion in the log",
            "inclusion proof does not verify against the signed tree head",
            passed,
            failures);

        using var headKey = bundle.TreeHeadPublicKeyPem is { } other && options.TrustedPublicKeyPem is null
            ? LoadKey(other, failures)
            : null;
        var treeKey = headKey ?? envelopeKey;
        if (treeKey is not null)
        {
            Check(head.Verify(treeKey), "tree head signature", "tree head signature invalid", passed, failures);
        }

        return new BundleVerificationResult(passed, failures, warnings);
    }

    private static void CheckSubject(InTotoStatement statement, Func<string, bool> match, byte[]? content, string what, List<string> passed, List<string> failures)
    {
        if (content is null)
        {
            return;
        }

        var subject = statement.Subject.FirstOrDefault(s => match(s.Name));
        if (subject is null)
        {
            failures.Add($"{what} is not a subject of the statement");
            return;
        }

        var expected = subject.Digest.TryGetValue("sha256", out var digest) ? digest : null;
        Check(string.Equals(expected, StatementBuilder.Sha256Hex(content), StringComparison.OrdinalIgnoreCase), $"{what} digest", $"{what} digest mismatch", passed, failures);
    }

    private static InTotoStatement? ParseStatement(DsseEnvelope envelope, List<string> failures)
    {
        try
        {
            return StatementBuilder.Parse(Convert.FromBase64String(envelope.Payload));
        }
        catch (Exception ex) when (ex is FormatException or JsonException)
        {
            failures.Add($"envelope payload is not an in-toto statement: {ex.Message}");
            return null;
        }
    }

    private static ECDsa? LoadKey(string pem, List<string> failures)
    {
        try
        {
            return EcKeys.ImportPublicPem(pem);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            failures.Add($"public key unusable: {ex.Message}");
            return null;
        }
    }

    private static byte[]? Decode(string base64) => EcKeys.TryDecodeBase64(base64, out var bytes) && bytes.Length == MerkleHash.Size ? bytes : null;

    private static string Normalise(string pem) => string.Concat(pem.Where(c => !char.IsWhiteSpace(c)));

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
