using System.Security.Cryptography;

namespace Sandstorm.Security.TransparencyLog;

/// <summary>RFC 6962 / RFC 9162 hashing: domain-separated leaf and node hashes over SHA-256.</summary>
public static class MerkleHash
{
    /// <summary>Size of every hash in the log.</summary>
    public const int Size = 32;

    /// <summary>MTH of the empty tree: SHA-256 of the empty string.</summary>
    public static byte[] Empty() => SHA256.HashData([]);

    /// <summary>Leaf hash: SHA-256(0x00 || leaf). The 0x00 prefix keeps a leaf from posing as an inner node (second-preimage).</summary>
    public static byte[] Leaf(ReadOnlySpan<byte> leaf)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData([0x00]);
        hash.AppendData(leaf);
        return hash.GetHashAndReset();
    }

    /// <summary>Inner node hash: SHA-256(0x01 || left || right).</summary>
    public static byte[] Node(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
        Span<byte> buffer = stackalloc byte[1 + (2 * Size)];
        buffer[0] = 0x01;
        left.CopyTo(buffer[1..]);
        right.CopyTo(buffer[(1 + Size)..]);
        return SHA256.HashData(buffer);
    }

    /// <summary>Largest power of two strictly smaller than <paramref name="n"/> (n ≥ 2): the RFC 6962 split point k.</summary>
    public static long SplitPoint(long n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 2);
        return 1L << (int)(63 - long.LeadingZeroCount(n - 1));
    }

    /// <summary>Root from a frontier (hashes of the complete subtrees of the size's binary decomposition, largest first).</summary>
    public static byte[] RootFromFrontier(IReadOnlyList<byte[]> frontier)
    {
        if (frontier.Count == 0)
        {
            return Empty();
        }

        // MTH nests to the right: H(1 || T_a || H(1 || T_b || T_c)) for n = 2^a + 2^b + 2^c.
        var root = frontier[^1];
        for (var i = frontier.Count - 2; i >= 0; i--)
        {
            root = Node(frontier[i], root);
        }

        return root;
    }

    /// <summary>Appends a leaf hash to a frontier of a tree of <paramref name="size"/> leaves, merging equal complete subtrees.</summary>
    public static void AppendToFrontier(List<byte[]> frontier, long size, byte[] leafHash)
    {
        frontier.Add(leafHash);

        // Each trailing 1-bit of the old size is a complete subtree that the new leaf completes into a bigger one.
        for (var s = size; (s & 1) == 1; s >>= 1)
        {
            var right = frontier[^1];
            var left = frontier[^2];
            frontier.RemoveRange(frontier.Count - 2, 2);
            frontier.Add(Node(left, right));
        }
    }
}
