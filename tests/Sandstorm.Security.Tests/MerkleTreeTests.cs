using System.Security.Cryptography;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Security.Tests;

public sealed class MerkleTreeTests
{
    // The leaves and roots used by Certificate Transparency's reference implementation tests for RFC 6962.
    private static readonly byte[][] VectorLeaves =
    [
        [], [0x00], [0x10], [0x20, 0x21], [0x30, 0x31], [0x40, 0x41, 0x42, 0x43],
        [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
        Convert.FromHexString("606162636465666768696a6b6c6d6e6f"),
    ];

    private static readonly string[] VectorRoots =
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    [Fact]
    public void Root_Rfc6962Vectors_Match()
    {
        var tree = new MerkleTree();
        var frontier = new List<byte[]>();
        for (var i = 0; i < VectorLeaves.Length; i++)
        {
            MerkleHash.AppendToFrontier(frontier, tree.Count, MerkleHash.Leaf(VectorLeaves[i]));
            tree.AppendLeafHash(MerkleHash.Leaf(VectorLeaves[i]));
            Assert.Equal(VectorRoots[i], Convert.ToHexStringLower(tree.Root(i + 1)));
            Assert.Equal(VectorRoots[i], Convert.ToHexStringLower(MerkleHash.RootFromFrontier(frontier)));
        }

        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Convert.ToHexStringLower(tree.Root(0)));
    }

    [Fact]
    public void Proofs_AllSizesUpTo70_MatchNaiveRecursionAndVerify()
    {
        var leaves = Enumerable.Range(0, 70).Select(i => MerkleHash.Leaf(BitConverter.GetBytes(i))).ToArray();
        var tree = new MerkleTree();
        foreach (var leaf in leaves)
        {
            tree.AppendLeafHash(leaf);
        }

        for (var n = 1; n <= leaves.Length; n++)
        {
            var root = NaiveRoot(leaves.AsSpan(0, n).ToArray());
            Assert.Equal(root, tree.Root(n));
            for (var m = 0; m < n; m++)
            {
                var path = tree.InclusionProof(m, n);
                Assert.Equal(NaivePath(m, leaves.AsSpan(0, n).ToArray()), path);
                Assert.True(MerkleProofs.VerifyInclusion(leaves[m], m, n, path, root));

                // (A path can also fit a bigger size over the same root — e.g. 3 leaves read as 4 — which is why the
                // size is only trusted as part of a signed tree head.)
                if (n < leaves.Length)
                {
                    Assert.False(MerkleProofs.VerifyInclusion(leaves[m], m, n + 1, path, tree.Root(n + 1)), $"stale path of {m} in {n}");
                }
                if (n > 1)
                {
                    Assert.False(MerkleProofs.VerifyInclusion(leaves[(m + 1) % n], m, n, path, root));
                }
            }

            for (var m = 0; m <= n; m++)
            {
                var proof = tree.ConsistencyProof(m, n);
                var oldRoot = tree.Root(m);
                Assert.Equal(NaiveConsistency(m, leaves.AsSpan(0, n).ToArray()), proof);
                Assert.True(MerkleProofs.VerifyConsistency(m, n, oldRoot, root, proof), $"consistency {m}->{n}");
                if (m > 0 && m < n)
                {
                    Assert.False(MerkleProofs.VerifyConsistency(m, n, tree.Root(m - 1), root, proof));
                    var broken = proof.Select(h => h.ToArray()).ToList();
                    broken[^1][0] ^= 1;
                    Assert.False(MerkleProofs.VerifyConsistency(m, n, oldRoot, root, broken));
                }
            }
        }
    }

    [Fact]
    public void InclusionProof_AnyFlippedBit_FailsVerification()
    {
        var tree = new MerkleTree();
        var leaves = Enumerable.Range(0, 37).Select(i => MerkleHash.Leaf([(byte)i])).ToArray();
        foreach (var leaf in leaves)
        {
            tree.AppendLeafHash(leaf);
        }

        var root = tree.Root(37);
        var path = tree.InclusionProof(21, 37);
        for (var i = 0; i < path.Count; i++)
        {
            var broken = path.Select(h => h.ToArray()).ToList();
            broken[i][RandomNumberGenerator.GetInt32(32)] ^= 0x40;
            Assert.False(MerkleProofs.VerifyInclusion(leaves[21], 21, 37, broken, root));
        }

        Assert.False(MerkleProofs.VerifyInclusion(leaves[21], 21, 37, path.Take(path.Count - 1).ToList(), root));
        Assert.False(MerkleProofs.VerifyInclusion(leaves[21], 20, 37, path, root));
    }

    private static byte[] NaiveRoot(byte[][] leaves)
    {
        if (leaves.Length == 1)
        {
            return leaves[0];
        }

        var k = 1;
        while (k * 2 < leaves.Length)
        {
            k *= 2;
        }

        return MerkleHash.Node(NaiveRoot(leaves[..k]), NaiveRoot(leaves[k..]));
    }

    private static List<byte[]> NaivePath(int m, byte[][] leaves)
    {
        if (leaves.Length == 1)
        {
            return [];
        }

        var k = (int)MerkleHash.SplitPoint(leaves.Length);
        return m < k
            ? [.. NaivePath(m, leaves[..k]), NaiveRoot(leaves[k..])]
            : [.. NaivePath(m - k, leaves[k..]), NaiveRoot(leaves[..k])];
    }

    private static List<byte[]> NaiveConsistency(int m, byte[][] leaves) =>
        m == 0 || m == leaves.Length ? [] : NaiveSubProof(m, leaves, true);

    private static List<byte[]> NaiveSubProof(int m, byte[][] leaves, bool b)
    {
        if (m == leaves.Length)
        {
            return b ? [] : [NaiveRoot(leaves)];
        }

        var k = (int)MerkleHash.SplitPoint(leaves.Length);
        return m <= k
            ? [.. NaiveSubProof(m, leaves[..k], b), NaiveRoot(leaves[k..])]
            : [.. NaiveSubProof(m - k, leaves[k..], false), NaiveRoot(leaves[..k])];
    }
}
