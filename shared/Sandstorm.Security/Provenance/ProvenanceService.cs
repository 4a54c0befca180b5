using System.Net;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Logging;
using Sandstorm.Security.Dsse;
using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Security.Provenance;

/// <summary>
/// Records provenance: statement → DSSE envelope (signed by <see cref="IProvenanceSigner"/>) → blob
/// <c>provenance/{tenantId}/{runId}.dsse.json</c> (create-only) → transparency log leaf.
/// </summary>
public sealed class ProvenanceService : IProvenanceService
{
    /// <summary>Blob container of envelopes.</summary>
    public const string ContainerName = "provenance";

    private readonly BlobServiceClient _blobs;
    private readonly IProvenanceSigner _signer;
    private readonly ITransparencyLog _log;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _initLock = new(1, 1);
    private BlobContainerClient? _container;

    public ProvenanceService(BlobServiceClient blobs, IProvenanceSigner signer, ITransparencyLog log, ILogger<ProvenanceService> logger)
    {
        _blobs = blobs;
        _signer = signer;
        _log = log;
        _logger = logger;
    }

    /// <summary>Blob name of a run's envelope.</summary>
    public static string BlobName(string tenantId, string runId) => $"{tenantId}/{runId}.dsse.json";

    public Task<ProvenanceRecord> RecordAsync(ProvenanceInput input, CancellationToken cancellationToken) =>
        RecordStatementAsync(input.TenantId, input.RunId, StatementBuilder.Build(input), cancellationToken);

    public Task<ProvenanceRecord> RecordSandboxAsync(SandboxProvenanceInput input, CancellationToken cancellationToken) =>
        RecordStatementAsync(input.TenantId, input.SandboxId, SandboxStatementBuilder.Build(input), cancellationToken);

    // The subject (a run or a kept sandbox) is named by its id: one envelope and one log entry each.
    private async Task<ProvenanceRecord> RecordStatementAsync(string tenantId, string subjectId, InTotoStatement statement, CancellationToken cancellationToken)
    {
        CheckId(tenantId, "TenantId");
        CheckId(subjectId, "RunId");
        var container = await ContainerAsync(cancellationToken);
        var blobName = BlobName(tenantId, subjectId);
        var blob = container.GetBlobClient(blobName);

        // The blob is written once and is the source of truth for the leaf: a retried or concurrent settle reuses the
        // first envelope instead of signing a second one (ECDSA signatures differ each time, so two would not match).
        // The first settle is the common case, so it signs and uploads create-only straight away; a conflict means an
        // earlier attempt stored its envelope, which is read back and used instead.
        var envelope = await DsseV1.SignAsync(_signer, DsseV1.InTotoPayloadType, StatementBuilder.Serialize(statement), cancellationToken);
        var envelopeBytes = envelope.ToCanonicalJson();
        try
        {
            await blob.UploadAsync(
                BinaryData.FromBytes(envelopeBytes),
                new BlobUploadOptions
                {
                    Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
                    HttpHeaders = new BlobHttpHeaders { ContentType = "application/json" },
                },
                cancellationToken);
        }
        catch (RequestFailedException ex) when (ex.Status is (int)HttpStatusCode.Conflict or (int)HttpStatusCode.PreconditionFailed)
        {
            envelopeBytes = await TryDownloadAsync(blob, cancellationToken)
                ?? throw new InvalidOperationException($"envelope blob {blobName} vanished after a conflicting upload", ex);
        }

        var stored = DsseEnvelope.Parse(envelopeBytes);
        var keyId = stored.Signatures.FirstOrDefault()?.KeyId ?? "";
        var appended = await _log.AppendAsync(new LogAppend(subjectId, tenantId, envelopeBytes, blobName, keyId), cancellationToken);
        if (appended.AlreadyPresent)
        {
            var entry = await _log.FindByRunAsync(subjectId, cancellationToken);
            if (entry is null || entry.TenantId != tenantId)
            {
                throw new InvalidOperationException($"run {subjectId} is already logged for another tenant");
            }

            _logger.LogInformation("Provenance of run {RunId} was already logged at {Index}", subjectId, appended.Index);
        }
        else
        {
            _logger.LogInformation("Logged provenance of run {RunId} at {Index}", subjectId, appended.Index);
        }

        return new ProvenanceRecord(blob.Uri.AbsoluteUri, blobName, appended.Index, keyId);
    }

    public async Task<ProvenanceBundle?> GetBundleAsync(string tenantId, string runId, CancellationToken cancellationToken)
    {
        var entry = await _log.FindByRunAsync(runId, cancellationToken);

        // Another tenant's run is as invisible as a missing one.
        if (entry is null || entry.TenantId != tenantId)
        {
            return null;
        }

        var container = await ContainerAsync(cancellationToken);
        var bytes = await TryDownloadAsync(container.GetBlobClient(entry.BlobName), cancellationToken)
            ?? throw new LogIntegrityException($"envelope blob {entry.BlobName} of log entry {entry.Index} is missing");
        if (!MerkleHash.Leaf(bytes).AsSpan().SequenceEqual(entry.LeafHash))
        {
            throw new LogIntegrityException($"envelope blob {entry.BlobName} does not match the leaf hash of log entry {entry.Index}");
        }

        var treeHead = await _log.GetSignedTreeHeadAsync(cancellationToken);
        var proof = await _log.GetInclusionProofAsync(entry.Index, treeHead.TreeSize, cancellationToken);
        var envelopeKey = await _signer.GetPublicKeyAsync(entry.KeyId, cancellationToken);
        var headKey = treeHead.KeyId == entry.KeyId ? null : await _signer.GetPublicKeyAsync(treeHead.KeyId, cancellationToken);
        return new ProvenanceBundle
        {
            Envelope = DsseEnvelope.Parse(bytes),
            KeyId = entry.KeyId,
            PublicKeyPem = envelopeKey.PublicKeyPem,
            LogIndex = entry.Index,
            InclusionProof = proof,
            TreeHead = treeHead,
            TreeHeadPublicKeyPem = headKey?.PublicKeyPem,
        };
    }

    public Task<SignedTreeHead> GetTreeHeadAsync(CancellationToken cancellationToken) => _log.GetSignedTreeHeadAsync(cancellationToken);

    public Task<ConsistencyProof> GetConsistencyProofAsync(long fromSize, long toSize, CancellationToken cancellationToken) =>
        _log.GetConsistencyProofAsync(fromSize, toSize, cancellationToken);

    public Task<SigningKey> GetPublicKeyAsync(CancellationToken cancellationToken) => _signer.GetPublicKeyAsync(cancellationToken);

    /// <summary>
    /// Checks every logged envelope blob against its leaf hash (a rewritten blob) and, through the log, the stored
    /// leaves against the head (a rewritten entry). Returns the problems; empty when all hold.
    /// </summary>
    public async Task<IReadOnlyList<string>> AuditAsync(CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        if (_log is TableTransparencyLog table)
        {
            problems.AddRange(await table.VerifyStoredTreeAsync(cancellationToken));
        }

        var head = await _log.GetSignedTreeHeadAsync(cancellationToken);
        var container = await ContainerAsync(cancellationToken);
        await foreach (var entry in _log.ReadEntriesAsync(0, head.TreeSize, cancellationToken))
        {
            var bytes = await TryDownloadAsync(container.GetBlobClient(entry.BlobName), cancellationToken);
            if (bytes is null)
            {
                problems.Add($"envelope of entry {entry.Index} is missing");
            }
            else if (!MerkleHash.Leaf(bytes).AsSpan().SequenceEqual(entry.LeafHash))
            {
                problems.Add($"envelope of entry {entry.Index} does not match its leaf hash");
            }
        }

        return problems;
    }

    private static void CheckId(string value, string name)
    {
        // Ids become blob path segments: refuse anything that could step into another tenant's prefix.
        if (string.IsNullOrWhiteSpace(value) || value.Contains('/', StringComparison.Ordinal) || value.Contains('\\', StringComparison.Ordinal) || value is "." or "..")
        {
            throw new ArgumentException($"{name} must be a non-empty single path segment", name);
        }
    }

    private static async Task<byte[]?> TryDownloadAsync(BlobClient blob, CancellationToken cancellationToken)
    {
        try
        {
            var content = await blob.DownloadContentAsync(cancellationToken);
            return content.Value.Content.ToArray();
        }
        catch (RequestFailedException ex) when (ex.Status == (int)HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    private async Task<BlobContainerClient> ContainerAsync(CancellationToken cancellationToken)
    {
        if (_container is { } ready)
        {
            return ready;
        }

        await _initLock.WaitAsync(cancellationToken);
        try
        {
            if (_container is null)
            {
                var container = _blobs.GetBlobContainerClient(ContainerName);
                await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
                _container = container;
            }

            return _container;
        }
        finally
        {
            _initLock.Release();
        }
    }
}
