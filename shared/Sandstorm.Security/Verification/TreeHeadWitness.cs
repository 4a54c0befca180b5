using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Security.Verification;

/// <summary>What a witness concluded about a newly verified tree head against the one it remembers.</summary>
/// <param name="Ok">The new head is the remembered one, or the two are consistent (one log extends the other).</param>
/// <param name="Advance">The new head is larger and consistent: remember it from now on.</param>
/// <param name="Message">What was checked, or why it failed.</param>
public sealed record TreeHeadWitnessResult(bool Ok, bool Advance, string Message);

/// <summary>
/// A verifier's memory of a log (RFC 6962 §5.3 "gossip" in its simplest form): the last signed tree head it verified.
/// A later head must extend it and an earlier one must be its prefix, each shown by a consistency proof, so a log that
/// was rolled back, forked or rewritten after the verifier saw it is caught the next time it looks.
/// </summary>
public static class TreeHeadWitness
{
    /// <summary>
    /// Checks <paramref name="seen"/> (already signature-verified) against <paramref name="remembered"/> of the same log.
    /// <paramref name="proofs"/> fetches a consistency proof between two sizes; null when offline, which fails any check
    /// that needs one. Never throws on a bad proof; reports it.
    /// </summary>
    public static async Task<TreeHeadWitnessResult> CheckAsync(
        SignedTreeHead remembered,
        SignedTreeHead seen,
        Func<long, long, CancellationToken, Task<ConsistencyProof>>? proofs,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(remembered);
        ArgumentNullException.ThrowIfNull(seen);
        if (!string.Equals(remembered.LogName, seen.LogName, StringComparison.Ordinal))
        {
            return new(false, false, $"the tree head is of log '{seen.LogName}', the remembered one of '{remembered.LogName}'");
        }

        if (!TryDecode(remembered.RootHash, out var rememberedRoot) || !TryDecode(seen.RootHash, out var seenRoot))
        {
            return new(false, false, "a tree head's root hash is not 32 bytes of base64");
        }

        if (seen.TreeSize == remembered.TreeSize)
        {
            return rememberedRoot.AsSpan().SequenceEqual(seenRoot)
                ? new(true, false, $"tree head is the remembered one (size {seen.TreeSize})")
                : new(false, false, $"log forked: size {seen.TreeSize} has root {seen.RootHash}, but the remembered head of that size has {remembered.RootHash}");
        }

        var (from, to, fromRoot, toRoot) = seen.TreeSize > remembered.TreeSize
            ? (remembered.TreeSize, seen.TreeSize, rememberedRoot, seenRoot)
            : (seen.TreeSize, remembered.TreeSize, seenRoot, rememberedRoot);
        if (proofs is null)
        {
            return new(false, false, $"a consistency proof from size {from} to {to} is needed (the remembered head is of size {remembered.TreeSize}) and no control plane was given to ask for it");
        }

        ConsistencyProof proof;
        try
        {
            proof = await proofs(from, to, cancellationToken);
        }
        catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException or InvalidOperationException or TaskCanceledException)
        {
            var what = seen.TreeSize < remembered.TreeSize ? "the log may have been rolled back" : "the log may have been rewritten";
            return new(false, false, $"no consistency proof from size {from} to {to} ({what}): {e.Message}");
        }

        var hashes = new List<byte[]>(proof.Hashes.Count);
        foreach (var hash in proof.Hashes)
        {
            if (!TryDecode(hash, out var bytes))
            {
                return new(false, false, "the consistency proof holds a hash that is not 32 bytes of base64");
            }

            hashes.Add(bytes);
        }

        var consistent = proof.FromSize == from && proof.ToSize == to && MerkleProofs.VerifyConsistency(from, to, fromRoot, toRoot, hashes);
        if (!consistent)
        {
            return seen.TreeSize < remembered.TreeSize
                ? new(false, false, $"log rolled back or forked: the head of size {seen.TreeSize} is not a prefix of the remembered head of size {remembered.TreeSize}")
                : new(false, false, $"log forked or rewritten: the head of size {seen.TreeSize} does not extend the remembered head of size {remembered.TreeSize}");
        }

        return seen.TreeSize > remembered.TreeSize
            ? new(true, true, $"consistency from the remembered head (size {from}) to size {to}")
            : new(true, false, $"consistency from size {from} to the remembered head (size {to})");
    }

    private static bool TryDecode(string base64, out byte[] bytes) =>
        EcKeys.TryDecodeBase64(base64, out bytes) && bytes.Length == MerkleHash.Size;
}
