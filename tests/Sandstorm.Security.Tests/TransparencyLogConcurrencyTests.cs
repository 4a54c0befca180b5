using System.Text;
using Sandstorm.Security.TransparencyLog;
using Sandstorm.Testing;

namespace Sandstorm.Security.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class TransparencyLogConcurrencyTests(LocalAzurite azurite) : IDisposable
{
    private readonly Harness _h = new(azurite);

    [Fact]
    public async Task AppendAsync_1000ConcurrentOnTwoWorkers_EveryIndexOnceAndTreeConsistent()
    {
        const int count = 1000;

        // Two log instances over one table stand for two processes racing on the same rows; within each, 500 appends
        // run at once.
        var workers = new[] { _h.Log, _h.NewLog() };
        var leaves = Enumerable.Range(0, count).Select(i => Encoding.UTF8.GetBytes($"envelope-{i}")).ToArray();
        var results = await Task.WhenAll(Enumerable.Range(0, count).Select(i => Task.Run(() =>
            workers[i % 2].AppendAsync(new LogAppend($"run-{i}", "tenant", leaves[i], $"tenant/run-{i}.dsse.json", "key"), CancellationToken.None))));

        Assert.All(results, r => Assert.False(r.AlreadyPresent));
        Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), results.Select(r => r.Index).Order());

        var entries = new List<LogEntry>();
        await foreach (var entry in _h.Log.ReadEntriesAsync(0, count + 10, CancellationToken.None))
        {
            entries.Add(entry);
        }

        Assert.Equal(Enumerable.Range(0, count).Select(i => (long)i), entries.Select(e => e.Index));
        Assert.Equal(count, entries.Select(e => e.RunId).Distinct().Count());

        // The signed root equals a recomputation from the leaves as appended (each run's leaf where its append said).
        var byIndex = new byte[count][];
        for (var i = 0; i < count; i++)
        {
            byIndex[results[i].Index] = MerkleHash.Leaf(leaves[i]);
        }

        var recomputed = new MerkleTree();
        foreach (var leaf in byIndex)
        {
            recomputed.AppendLeafHash(leaf);
        }

        var head = await workers[1].GetSignedTreeHeadAsync(CancellationToken.None);
        Assert.Equal(count, head.TreeSize);
        Assert.Equal(Convert.ToBase64String(recomputed.Root(count)), head.RootHash);
        using var key = Signing.EcKeys.ImportPublicPem((await _h.Signer.GetPublicKeyAsync(CancellationToken.None)).PublicKeyPem);
        Assert.True(head.Verify(key));

        var root = Convert.FromBase64String(head.RootHash);
        for (var i = 0; i < count; i += 7)
        {
            var proof = await workers[i % 2].GetInclusionProofAsync(i, count, CancellationToken.None);
            Assert.True(MerkleProofs.VerifyInclusion(byIndex[i], i, count, proof.Hashes.Select(Convert.FromBase64String).ToList(), root), $"inclusion of {i}");
        }

        Assert.Empty(await _h.Log.VerifyStoredTreeAsync(CancellationToken.None));
    }

    [Fact]
    public async Task AppendAsync_EntryWrittenButHeadNotAdvanced_IsCoveredByTheNextTreeHead()
    {
        // A writer that died after inserting its entry but before moving the head: the entry is row 0, head absent.
        await _h.Log.AppendAsync(new LogAppend("warmup", "t", "w"u8.ToArray(), "b", "k"), CancellationToken.None);
        var table = _h.Tables.GetTableClient(_h.TableName);
        await table.AddEntityAsync(new Azure.Data.Tables.TableEntity("test", TableTransparencyLog.EntryRowKey(1))
        {
            ["RunId"] = "crashed",
            ["TenantId"] = "t",
            ["LeafHash"] = MerkleHash.Leaf("c"u8),
            ["BlobName"] = "b",
            ["KeyId"] = "k",
        });

        var next = await _h.NewLog().AppendAsync(new LogAppend("next", "t", "n"u8.ToArray(), "b", "k"), CancellationToken.None);

        Assert.Equal(2, next.Index);
        Assert.Equal(3, (await _h.Log.GetSignedTreeHeadAsync(CancellationToken.None)).TreeSize);
    }

    [Fact]
    public async Task AppendAsync_StoredHeadFollowsInTheBackground()
    {
        // AppendAsync returns once the entry is stored; the head row itself is moved over it without anyone asking
        // for a tree head.
        var appended = await _h.Log.AppendAsync(new LogAppend("solo", "t", "s"u8.ToArray(), "b", "k"), CancellationToken.None);
        var table = _h.Tables.GetTableClient(_h.TableName);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        long size = 0;
        while (DateTime.UtcNow < deadline)
        {
            var head = await table.GetEntityIfExistsAsync<Azure.Data.Tables.TableEntity>("test", "head");
            size = head.HasValue ? head.Value!.GetInt64("Size") ?? 0 : 0;
            if (size > appended.Index)
            {
                break;
            }

            await Task.Delay(20);
        }

        Assert.Equal(appended.Index + 1, size);
    }

    public void Dispose() => _h.Dispose();
}
