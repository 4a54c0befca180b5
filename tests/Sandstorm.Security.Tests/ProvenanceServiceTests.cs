using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Sandstorm.Core;
using Sandstorm.Security.Dsse;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.TransparencyLog;
using Sandstorm.Security.Verification;
using Sandstorm.Testing;

namespace Sandstorm.Security.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class ProvenanceServiceTests(LocalAzurite azurite) : IDisposable
{
    private readonly Harness _h = new(azurite);

    [Fact]
    public async Task RecordAsync_ThenBundle_VerifiesEverythingAgainstTrustedKey()
    {
        var record = await _h.Service.RecordAsync(_h.Input("run-a"), CancellationToken.None);
        await _h.Service.RecordAsync(_h.Input("run-b"), CancellationToken.None);
        var bundle = await RoundTrip((await _h.Service.GetBundleAsync(_h.Tenant, "run-a", CancellationToken.None))!);
        var key = await _h.Service.GetPublicKeyAsync(CancellationToken.None);

        Assert.Equal(0, record.LogIndex);
        Assert.Equal($"{_h.Tenant}/run-a.dsse.json", record.BlobName);
        Assert.Equal(key.KeyId, record.KeyId);
        var result = BundleVerifier.Verify(bundle, Options(key.PublicKeyPem));
        Assert.True(result.Ok, string.Join("; ", result.Failures));
        Assert.Contains("stdout digest", result.Passed);
        Assert.Contains("code digest", result.Passed);
        Assert.Contains("file data/in.txt digest", result.Passed);
        Assert.Contains("inclusion in the log", result.Passed);
        Assert.Contains("tree head signature", result.Passed);
        Assert.Equal(2, bundle.TreeHead.TreeSize);

        // The statement says what ran and where, but never environment values.
        var statement = StatementBuilder.Parse(Convert.FromBase64String(bundle.Envelope.Payload));
        Assert.Equal("https://in-toto.io/Statement/v1", statement.Type);
        Assert.Equal(["code/main.py", "files/data/in.txt", "stdout", "stderr"], statement.Subject.Select(s => s.Name));
        Assert.Equal("bwrap", statement.RunPredicate().Execution.Runtime);
        Assert.Equal(["TOKEN"], statement.RunPredicate().Request.EnvironmentNames);
        Assert.DoesNotContain("secret-value", Encoding.UTF8.GetString(Convert.FromBase64String(bundle.Envelope.Payload)), StringComparison.Ordinal);

        Assert.Null(await _h.Service.GetBundleAsync("other-tenant", "run-a", CancellationToken.None));
    }

    [Fact]
    public async Task Verify_AnyTamperedPart_IsDetectedAndNamed()
    {
        await _h.Service.RecordAsync(_h.Input("run-0"), CancellationToken.None);
        await _h.Service.RecordAsync(_h.Input("run-1"), CancellationToken.None);
        await _h.Service.RecordAsync(_h.Input("run-2"), CancellationToken.None);
        var bundle = (await _h.Service.GetBundleAsync(_h.Tenant, "run-1", CancellationToken.None))!;
        var pem = (await _h.Service.GetPublicKeyAsync(CancellationToken.None)).PublicKeyPem;
        Assert.True(BundleVerifier.Verify(bundle, Options(pem)).Ok);

        AssertFails(bundle, Options(pem) with { Stdout = Encoding.UTF8.GetBytes("hello!\n") }, "stdout digest mismatch");
        AssertFails(bundle, Options(pem) with { Stderr = "x"u8.ToArray() }, "stderr digest mismatch");

        // Envelope payload: a statement claiming other stdout, re-encoded, breaks the signature and the inclusion.
        var payload = Encoding.UTF8.GetString(Convert.FromBase64String(bundle.Envelope.Payload)).Replace("bwrap", "runsc", StringComparison.Ordinal);
        var forged = bundle with { Envelope = bundle.Envelope with { Payload = Convert.ToBase64String(Encoding.UTF8.GetBytes(payload)) } };
        AssertFails(forged, Options(pem), "envelope signature invalid", "inclusion proof does not verify against the signed tree head");

        var sig = Convert.FromBase64String(bundle.Envelope.Signatures[0].Sig);
        sig[^1] ^= 1;
        var badSig = bundle with { Envelope = bundle.Envelope with { Signatures = [bundle.Envelope.Signatures[0] with { Sig = Convert.ToBase64String(sig) }] } };
        AssertFails(badSig, Options(pem), "envelope signature invalid", "inclusion proof does not verify against the signed tree head");

        var hashes = bundle.InclusionProof.Hashes.ToList();
        var h0 = Convert.FromBase64String(hashes[0]);
        h0[0] ^= 1;
        hashes[0] = Convert.ToBase64String(h0);
        AssertFails(bundle with { InclusionProof = bundle.InclusionProof with { Hashes = hashes } }, Options(pem), "inclusion proof does not verify against the signed tree head");

        var root = Convert.FromBase64String(bundle.TreeHead.RootHash);
        root[5] ^= 1;
        AssertFails(bundle with { TreeHead = bundle.TreeHead with { RootHash = Convert.ToBase64String(root) } }, Options(pem), "inclusion proof does not verify against the signed tree head", "tree head signature invalid");
        AssertFails(bundle with { TreeHead = bundle.TreeHead with { Timestamp = bundle.TreeHead.Timestamp.AddSeconds(1) } }, Options(pem), "tree head signature invalid");

        // A bundle re-signed with another key passes only against that key, not the trusted one.
        using var otherDir = new TempDir();
        using var other = new Signing.LocalSigner(Path.Combine(otherDir.Path, "k.pem"));
        var otherPem = (await other.GetPublicKeyAsync(CancellationToken.None)).PublicKeyPem;
        var resigned = bundle with { PublicKeyPem = otherPem, Envelope = await DsseV1.SignAsync(other, DsseV1.InTotoPayloadType, Convert.FromBase64String(bundle.Envelope.Payload), CancellationToken.None) };
        var result = BundleVerifier.Verify(resigned, Options(pem));
        Assert.Contains("envelope signature invalid", result.Failures);
    }

    [Fact]
    public async Task RewrittenLogEntry_InTables_IsDetected()
    {
        for (var i = 0; i < 5; i++)
        {
            await _h.Service.RecordAsync(_h.Input($"run-{i}"), CancellationToken.None);
        }

        var oldBundle = (await _h.Service.GetBundleAsync(_h.Tenant, "run-2", CancellationToken.None))!;
        Assert.Empty(await _h.Service.AuditAsync(CancellationToken.None));

        // An attacker with table access replaces entry 3 with the leaf of an envelope of their own.
        var table = _h.Tables.GetTableClient(_h.TableName);
        var entity = (await table.GetEntityAsync<TableEntity>("test", TableTransparencyLog.EntryRowKey(3))).Value;
        entity["LeafHash"] = MerkleHash.Leaf("forged envelope"u8);
        await table.UpdateEntityAsync(entity, entity.ETag, TableUpdateMode.Replace);

        var problems = await _h.Service.AuditAsync(CancellationToken.None);
        Assert.Contains(problems, p => p.Contains("do not hash to the head's root", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("entry 3 does not match its leaf hash", StringComparison.Ordinal));

        // A fresh process rebuilding its tree from storage refuses to prove or sign anything over the rewritten log.
        var fresh = _h.NewService(_h.NewLog());
        await Assert.ThrowsAsync<LogIntegrityException>(() => fresh.GetBundleAsync(_h.Tenant, "run-2", CancellationToken.None));
        await Assert.ThrowsAsync<LogIntegrityException>(() => fresh.GetTreeHeadAsync(CancellationToken.None));

        // Even an attacker who also rewrote the head cannot produce a proof for run-2 against the head signed before.
        var tampered = new MerkleTree();
        await foreach (var e in _h.Log.ReadEntriesAsync(0, 5, CancellationToken.None))
        {
            tampered.AppendLeafHash(e.LeafHash);
        }

        var forgedProof = oldBundle.InclusionProof with { Hashes = tampered.InclusionProof(2, 5).Select(Convert.ToBase64String).ToList() };
        var pem = (await _h.Service.GetPublicKeyAsync(CancellationToken.None)).PublicKeyPem;
        AssertFails(oldBundle with { InclusionProof = forgedProof }, Options(pem), "inclusion proof does not verify against the signed tree head");
    }

    [Fact]
    public async Task RewrittenEnvelopeBlob_IsDetected()
    {
        await _h.Service.RecordAsync(_h.Input("run-x"), CancellationToken.None);
        var blob = _h.Blobs.GetBlobContainerClient(ProvenanceService.ContainerName).GetBlobClient($"{_h.Tenant}/run-x.dsse.json");
        await blob.UploadAsync(BinaryData.FromString("{}"), overwrite: true);

        await Assert.ThrowsAsync<LogIntegrityException>(() => _h.Service.GetBundleAsync(_h.Tenant, "run-x", CancellationToken.None));
        Assert.Contains("envelope of entry 0 does not match its leaf hash", await _h.Service.AuditAsync(CancellationToken.None));
    }

    [Fact]
    public async Task RecordAsync_RetriedReplayedAndConcurrent_AppendsOnce()
    {
        var first = await _h.Service.RecordAsync(_h.Input("run-r"), CancellationToken.None);
        var again = await _h.Service.RecordAsync(_h.Input("run-r"), CancellationToken.None);

        // A replay on another worker (fresh caches), and a burst of concurrent retries on two workers.
        var other = _h.NewService(_h.NewLog());
        var replay = await other.RecordAsync(_h.Input("run-r", stdout: "different output on replay"), CancellationToken.None);
        var burst = await Task.WhenAll(Enumerable.Range(0, 16).Select(i =>
            (i % 2 == 0 ? _h.Service : other).RecordAsync(_h.Input("run-s"), CancellationToken.None)));

        Assert.Equal(first, again);
        Assert.Equal(first, replay);
        Assert.Single(burst.Select(r => r.LogIndex).Distinct());
        var head = await _h.Service.GetTreeHeadAsync(CancellationToken.None);
        Assert.Equal(2, head.TreeSize);
        var entries = new List<LogEntry>();
        await foreach (var e in _h.Log.ReadEntriesAsync(0, 100, CancellationToken.None))
        {
            entries.Add(e);
        }

        Assert.Equal(["run-r", "run-s"], entries.Select(e => e.RunId));
        var pem = (await _h.Service.GetPublicKeyAsync(CancellationToken.None)).PublicKeyPem;
        var bundle = (await other.GetBundleAsync(_h.Tenant, "run-r", CancellationToken.None))!;
        Assert.True(BundleVerifier.Verify(bundle, Options(pem) with { Stdout = "hello\n"u8.ToArray() }).Ok);
    }

    [Fact]
    public async Task ConsistencyProof_BetweenSignedHeads_Verifies_AndOutOfRangeThrows()
    {
        await _h.Service.RecordAsync(_h.Input("c-0"), CancellationToken.None);
        await _h.Service.RecordAsync(_h.Input("c-1"), CancellationToken.None);
        await _h.Service.RecordAsync(_h.Input("c-2"), CancellationToken.None);
        var old = await _h.Service.GetTreeHeadAsync(CancellationToken.None);
        for (var i = 3; i < 7; i++)
        {
            await _h.Service.RecordAsync(_h.Input($"c-{i}"), CancellationToken.None);
        }

        var now = await _h.Service.GetTreeHeadAsync(CancellationToken.None);
        var proof = await _h.Service.GetConsistencyProofAsync(old.TreeSize, now.TreeSize, CancellationToken.None);
        Assert.True(MerkleProofs.VerifyConsistency(3, 7, Convert.FromBase64String(old.RootHash), Convert.FromBase64String(now.RootHash), proof.Hashes.Select(Convert.FromBase64String).ToList()));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _h.Service.GetConsistencyProofAsync(5, 3, CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _h.Service.GetConsistencyProofAsync(3, 8, CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _h.Service.GetConsistencyProofAsync(-1, 3, CancellationToken.None));
    }

    public void Dispose() => _h.Dispose();

    private static BundleVerificationOptions Options(string pem) => new()
    {
        TrustedPublicKeyPem = pem,
        Stdout = "hello\n"u8.ToArray(),
        Stderr = [],
        Code = "print('hello')"u8.ToArray(),
        Files = new Dictionary<string, byte[]> { ["data/in.txt"] = "input"u8.ToArray() },
    };

    private static void AssertFails(ProvenanceBundle bundle, BundleVerificationOptions options, params string[] expected)
    {
        var result = BundleVerifier.Verify(bundle, options);
        Assert.False(result.Ok);
        foreach (var failure in expected)
        {
            Assert.Contains(failure, result.Failures);
        }
    }

    // What a client holds is the JSON, so verification runs on a serialised and parsed bundle.
    private static async Task<ProvenanceBundle> RoundTrip(ProvenanceBundle bundle)
    {
        using var stream = new MemoryStream();
        await JsonSerializer.SerializeAsync(stream, bundle, SandstormJson.Options);
        stream.Position = 0;
        return (await JsonSerializer.DeserializeAsync<ProvenanceBundle>(stream, SandstormJson.Options))!;
    }

    private sealed class TempDir : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sandstorm-tmp-" + Guid.NewGuid().ToString("N"));

        public void Dispose()
        {
            if (Directory.Exists(Path))
            {
                Directory.Delete(Path, recursive: true);
            }
        }
    }
}
