using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Sandstorm.Security.Signing;

namespace Sandstorm.Security.TransparencyLog;

/// <summary>A log's size and root hash at a moment, signed ES256 by the provenance key.</summary>
public sealed record SignedTreeHead
{
    /// <summary>Log name (the Tables partition), so a head of one log cannot pass for another's.</summary>
    public required string LogName { get; init; }

    public required long TreeSize { get; init; }

    /// <summary>Base64 of the 32-byte root hash.</summary>
    public required string RootHash { get; init; }

    /// <summary>When the head was signed (millisecond precision; the signed text holds Unix milliseconds).</summary>
    public required DateTimeOffset Timestamp { get; init; }

    public required string KeyId { get; init; }

    /// <summary>Base64 of the ES256 signature (raw r||s) over <see cref="SignedText"/>.</summary>
    public required string Signature { get; init; }

    /// <summary>The exact bytes that are signed (see docs/provenance.md): four lines, each newline-terminated.</summary>
    public static byte[] SignedText(string logName, long treeSize, string rootHashBase64, DateTimeOffset timestamp) =>
        Encoding.UTF8.GetBytes(string.Create(
            CultureInfo.InvariantCulture,
            $"sandstorm-tree-head/v1\n{logName}\n{treeSize}\n{rootHashBase64}\n{timestamp.ToUnixTimeMilliseconds()}\n"));

    /// <summary>Signs a head with <paramref name="signer"/>.</summary>
    public static async Task<SignedTreeHead> SignAsync(IProvenanceSigner signer, string logName, long treeSize, byte[] rootHash, DateTimeOffset timestamp, CancellationToken cancellationToken)
    {
        var at = DateTimeOffset.FromUnixTimeMilliseconds(timestamp.ToUnixTimeMilliseconds());
        var root = Convert.ToBase64String(rootHash);
        var signature = await signer.SignDigestAsync(SHA256.HashData(SignedText(logName, treeSize, root, at)), cancellationToken);
        return new SignedTreeHead
        {
            LogName = logName,
            TreeSize = treeSize,
            RootHash = root,
            Timestamp = at,
            KeyId = signature.KeyId,
            Signature = Convert.ToBase64String(signature.Signature),
        };
    }

    /// <summary>True when the signature verifies under <paramref name="publicKey"/>.</summary>
    public bool Verify(ECDsa publicKey) =>
        EcKeys.TryDecodeBase64(Signature, out var sig)
        && sig.Length == 64
        && publicKey.VerifyData(SignedText(LogName, TreeSize, RootHash, Timestamp), sig, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
}
