namespace Sandstorm.Security.TransparencyLog;

/// <summary>Verifiers for inclusion and consistency proofs (RFC 9162 §2.1.3.2 and §2.1.4.2), usable offline.</summary>
public static class MerkleProofs
{
    /// <summary>True when <paramref name="path"/> proves leaf <paramref name="leafHash"/> sits at <paramref name="index"/> in the tree of <paramref name="size"/> leaves with <paramref name="root"/>.</summary>
    public static bool VerifyInclusion(ReadOnlySpan<byte> leafHash, long index, long size, IReadOnlyList<byte[]> path, ReadOnlySpan<byte> root)
    {
        if (index < 0 || index >= size || root.Length != MerkleHash.Size)
        {
            return false;
        }

        var fn = index;
        var sn = size - 1;
        var r = leafHash.ToArray();
        foreach (var p in path)
        {
            if (sn == 0 || p.Length != MerkleHash.Size)
            {
                return false;
            }

            if ((fn & 1) == 1 || fn == sn)
            {
                r = MerkleHash.Node(p, r);

                // Skip the levels where this node is a lone right edge: they add no sibling to the path.
                while ((fn & 1) == 0 && fn != 0)
                {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
            else
            {
                r = MerkleHash.Node(r, p);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && r.AsSpan().SequenceEqual(root);
    }

    /// <summary>True when <paramref name="proof"/> shows the tree (<paramref name="size2"/>, <paramref name="root2"/>) extends (<paramref name="size1"/>, <paramref name="root1"/>).</summary>
    public static bool VerifyConsistency(long size1, long size2, ReadOnlySpan<byte> root1, ReadOnlySpan<byte> root2, IReadOnlyList<byte[]> proof)
    {
        if (size1 < 0 || size2 < size1)
        {
            return false;
        }

        if (size1 == size2)
        {
            return proof.Count == 0 && root1.SequenceEqual(root2);
        }

        if (size1 == 0)
        {
            // Every tree extends the empty tree; there is nothing to prove.
            return proof.Count == 0;
        }

        if (proof.Count == 0 || proof.Any(p => p.Length != MerkleHash.Size))
        {
            return false;
        }

        var path = new List<byte[]>(proof.Count + 1);
        if ((size1 & (size1 - 1)) == 0)
        {
            // A power-of-two old tree is itself a node of the new one; the proof omits it.
            path.Add(root1.ToArray());
        }

        path.AddRange(proof);

        var fn = size1 - 1;
        var sn = size2 - 1;
        while ((fn & 1) == 1)
        {
            fn >>= 1;
            sn >>= 1;
        }

        var fr = path[0];
        var sr = path[0];
        foreach (var c in path.Skip(1))
        {
            if (sn == 0)
            {
                return false;
            }

            if ((fn & 1) == 1 || fn == sn)
            {
                fr = MerkleHash.Node(c, fr);
                sr = MerkleHash.Node(c, sr);
                while ((fn & 1) == 0 && fn != 0)
                {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
            else
            {
                sr = MerkleHash.Node(sr, c);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && fr.AsSpan().SequenceEqual(root1) && sr.AsSpan().SequenceEqual(root2);
    }
}
