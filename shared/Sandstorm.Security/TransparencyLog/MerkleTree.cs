namespace Sandstorm.Security.TransparencyLog;

/// <summary>
/// In-memory Merkle tree over leaf hashes that keeps every complete, aligned subtree hash (level i, index j covers
/// leaves [j·2^i, (j+1)·2^i)). Roots, inclusion and consistency proofs for any size up to <see cref="Count"/> then cost
/// O(log n) lookups and O(log n) hashes: about 64 bytes of memory per leaf. Not thread-safe; callers serialise.
/// </summary>
public sealed class MerkleTree
{
    private readonly List<HashLevel> _levels = [new HashLevel()];

    /// <summary>Number of leaves.</summary>
    public long Count => _levels[0].Count;

    /// <summary>Appends a leaf by its leaf hash (already SHA-256(0x00 || leaf)).</summary>
    public void AppendLeafHash(ReadOnlySpan<byte> leafHash)
    {
        if (leafHash.Length != MerkleHash.Size)
        {
            throw new ArgumentException("a leaf hash is 32 bytes", nameof(leafHash));
        }

        _levels[0].Add(leafHash);
        var level = 0;
        while (_levels[level].Count % 2 == 0)
        {
            var lower = _levels[level];
            var n = lower.Count;
            var parent = MerkleHash.Node(lower.Get(n - 2), lower.Get(n - 1));
            if (_levels.Count == level + 1)
            {
                _levels.Add(new HashLevel());
            }

            _levels[level + 1].Add(parent);
            level++;
        }
    }

    /// <summary>Leaf hash at <paramref name="index"/>.</summary>
    public byte[] LeafHash(long index) => _levels[0].Get(index).ToArray();

    /// <summary>MTH of the first <paramref name="size"/> leaves.</summary>
    public byte[] Root(long size)
    {
        CheckSize(size);
        return size == 0 ? MerkleHash.Empty() : SubtreeHash(0, size);
    }

    /// <summary>RFC 6962 §2.1.1 audit path of leaf <paramref name="index"/> in the tree of the first <paramref name="size"/> leaves, leaf side first.</summary>
    public IReadOnlyList<byte[]> InclusionProof(long index, long size)
    {
        CheckSize(size);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, size);
        var path = new List<byte[]>();
        Path(index, 0, size, path);
        return path;
    }

    /// <summary>RFC 6962 §2.1.2 consistency proof between sizes <paramref name="from"/> and <paramref name="to"/>.</summary>
    public IReadOnlyList<byte[]> ConsistencyProof(long from, long to)
    {
        CheckSize(to);
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(from, to);
        var proof = new List<byte[]>();
        if (from > 0 && from < to)
        {
            SubProof(from, 0, to, true, proof);
        }

        return proof;
    }

    // PATH(m, D[start:start+n]) with the RFC's recursion; every left part is a complete aligned subtree.
    private void Path(long m, long start, long n, List<byte[]> path)
    {
        if (n == 1)
        {
            return;
        }

        var k = MerkleHash.SplitPoint(n);
        if (m < k)
        {
            Path(m, start, k, path);
            path.Add(SubtreeHash(start + k, n - k));
        }
        else
        {
            Path(m - k, start + k, n - k, path);
            path.Add(SubtreeHash(start, k));
        }
    }

    // SUBPROOF(m, D[start:start+n], b) of RFC 6962 §2.1.2.
    private void SubProof(long m, long start, long n, bool b, List<byte[]> proof)
    {
        if (m == n)
        {
            if (!b)
            {
                proof.Add(SubtreeHash(start, n));
            }

            return;
        }

        var k = MerkleHash.SplitPoint(n);
        if (m <= k)
        {
            SubProof(m, start, k, b, proof);
            proof.Add(SubtreeHash(start + k, n - k));
        }
        else
        {
            SubProof(m - k, start + k, n - k, false, proof);
            proof.Add(SubtreeHash(start, k));
        }
    }

    // MTH(D[start:start+n]) where start is a multiple of the largest power of two ≤ n (true for every range the RFC
    // recursions visit), so complete parts come straight from the level cache.
    private byte[] SubtreeHash(long start, long n)
    {
        if ((n & (n - 1)) == 0)
        {
            var level = long.TrailingZeroCount(n);
            return _levels[(int)level].Get(start >> (int)level).ToArray();
        }

        var k = MerkleHash.SplitPoint(n);
        return MerkleHash.Node(SubtreeHash(start, k), SubtreeHash(start + k, n - k));
    }

    private void CheckSize(long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, Count);
    }

    // One contiguous buffer per level: a million leaves are 32 MB in a handful of arrays, not a million objects.
    private sealed class HashLevel
    {
        private byte[] _buffer = new byte[MerkleHash.Size * 64];

        public long Count { get; private set; }

        public void Add(ReadOnlySpan<byte> hash)
        {
            var offset = Count * MerkleHash.Size;
            if (offset + MerkleHash.Size > _buffer.LongLength)
            {
                Array.Resize(ref _buffer, checked(_buffer.Length * 2));
            }

            hash.CopyTo(_buffer.AsSpan((int)offset, MerkleHash.Size));
            Count++;
        }

        public ReadOnlySpan<byte> Get(long index)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
            return _buffer.AsSpan((int)(index * MerkleHash.Size), MerkleHash.Size);
        }
    }
}
