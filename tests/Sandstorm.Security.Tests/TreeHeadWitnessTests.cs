using System.Security.Cryptography;
using Sandstorm.Security.TransparencyLog;
using Sandstorm.Security.Verification;

namespace Sandstorm.Security.Tests;

/// <summary>A verifier's remembered tree head against later ones: honest growth passes, forks and roll-backs fail.</summary>
public sealed class TreeHeadWitnessTests
{
    [Fact]
    public async Task CheckAsync_LogGrewHonestly_PassesAndAdvances()
    {
        var log = Log("a", 10);

        var outcome = await TreeHeadWitness.CheckAsync(Head(log, 3), Head(log, 10), Proofs(log), CancellationToken.None);

        Assert.True(outcome.Ok, outcome.Message);
        Assert.True(outcome.Advance);
    }

    [Fact]
    public async Task CheckAsync_OlderHeadThatIsAPrefix_PassesWithoutAdvancing()
    {
        var log = Log("a", 10);

        var outcome = await TreeHeadWitness.CheckAsync(Head(log, 10), Head(log, 4), Proofs(log), CancellationToken.None);

        Assert.True(outcome.Ok, outcome.Message);
        Assert.False(outcome.Advance);
    }

    [Fact]
    public async Task CheckAsync_ForkedLogThatRewroteAnEntry_FailsWhateverProofTheServerGives()
    {
        var honest = Log("a", 5);
        var forked = Log("a", 9, rewrite: 2);

        // The forked server proves its own tree honestly; that proof cannot tie its root to the remembered one.
        var outcome = await TreeHeadWitness.CheckAsync(Head(honest, 5), Head(forked, 9), Proofs(forked), CancellationToken.None);

        Assert.False(outcome.Ok);
        Assert.Contains("forked", outcome.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAsync_SameSizeDifferentRoot_FailsAsAFork()
    {
        var outcome = await TreeHeadWitness.CheckAsync(Head(Log("a", 6), 6), Head(Log("a", 6, rewrite: 5), 6), proofs: null, CancellationToken.None);

        Assert.False(outcome.Ok);
        Assert.Contains("forked", outcome.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAsync_RolledBackLogWithNewEntries_FailsAsARollBack()
    {
        // The log was seen at size 8; the server was rolled back to size 5 and grew to 7 with other entries.
        var seen = Log("a", 8);
        var rolledBack = Log("a", 7, rewrite: 5);

        var outcome = await TreeHeadWitness.CheckAsync(Head(seen, 8), Head(rolledBack, 7), Proofs(rolledBack), CancellationToken.None);

        Assert.False(outcome.Ok);
        Assert.Contains("rolled back", outcome.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAsync_ServerRefusesTheProof_Fails()
    {
        var log = Log("a", 10);

        // A rolled-back log cannot prove consistency up to a size it no longer has.
        var outcome = await TreeHeadWitness.CheckAsync(
            Head(log, 10), Head(log, 4), (_, _, _) => throw new HttpRequestException("400 validation-failed"), CancellationToken.None);

        Assert.False(outcome.Ok);
        Assert.Contains("rolled back", outcome.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAsync_DifferentSizeOffline_FailsAskingForAControlPlane()
    {
        var log = Log("a", 10);

        var outcome = await TreeHeadWitness.CheckAsync(Head(log, 3), Head(log, 10), proofs: null, CancellationToken.None);

        Assert.False(outcome.Ok);
        Assert.Contains("consistency proof from size 3 to 10 is needed", outcome.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAsync_ProofForOtherSizes_Fails()
    {
        var log = Log("a", 10);

        var outcome = await TreeHeadWitness.CheckAsync(Head(log, 3), Head(log, 10), (_, _, _) => Task.FromResult(Proof(log, 4, 10)), CancellationToken.None);

        Assert.False(outcome.Ok);
    }

    private static MerkleTree Log(string seed, int size, int rewrite = -1)
    {
        var tree = new MerkleTree();
        for (var i = 0; i < size; i++)
        {
            tree.AppendLeafHash(MerkleHash.Leaf(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{seed}/{i}{(i >= rewrite && rewrite >= 0 ? "/forged" : string.Empty)}"))));
        }

        return tree;
    }

    // The witness trusts signatures checked by its caller; these heads are unsigned on purpose.
    private static SignedTreeHead Head(MerkleTree tree, long size) => new()
    {
        LogName = "test",
        TreeSize = size,
        RootHash = Convert.ToBase64String(tree.Root(size)),
        Timestamp = DateTimeOffset.UnixEpoch,
        KeyId = "k",
        Signature = string.Empty,
    };

    private static Func<long, long, CancellationToken, Task<ConsistencyProof>> Proofs(MerkleTree tree) =>
        (from, to, _) => to > tree.Count ? throw new HttpRequestException("400 validation-failed") : Task.FromResult(Proof(tree, from, to));

    private static ConsistencyProof Proof(MerkleTree tree, long from, long to) =>
        new(from, to, tree.ConsistencyProof(from, to).Select(Convert.ToBase64String).ToList());
}
