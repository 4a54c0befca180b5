using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Sandstorm.Security.Signing;

namespace Sandstorm.Security.Dsse;

/// <summary>DSSE v1 pre-authentication encoding, signing and verification.</summary>
public static class DsseV1
{
    /// <summary>Payload type of an in-toto statement.</summary>
    public const string InTotoPayloadType = "application/vnd.in-toto+json";

    /// <summary>PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths as ASCII decimal byte counts.</summary>
    public static byte[] Pae(string payloadType, ReadOnlySpan<byte> payload)
    {
        var type = Encoding.UTF8.GetBytes(payloadType);
        var header = Encoding.ASCII.GetBytes(string.Create(
            CultureInfo.InvariantCulture, $"DSSEv1 {type.Length} "));
        var middle = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $" {payload.Length} "));
        var result = new byte[header.Length + type.Length + middle.Length + payload.Length];
        var span = result.AsSpan();
        header.CopyTo(span);
        type.CopyTo(span[header.Length..]);
        middle.CopyTo(span[(header.Length + type.Length)..]);
        payload.CopyTo(span[(header.Length + type.Length + middle.Length)..]);
        return result;
    }

    /// <summary>Signs <paramref name="payload"/> with <paramref name="signer"/> and wraps it in an envelope.</summary>
    public static async Task<DsseEnvelope> SignAsync(IProvenanceSigner signer, string payloadType, byte[] payload, CancellationToken cancellationToken)
    {
        var digest = SHA256.HashData(Pae(payloadType, payload));
        var signature = await signer.SignDigestAsync(digest, cancellationToken);
        return new DsseEnvelope
        {
            PayloadType = payloadType,
            Payload = Convert.ToBase64String(payload),
            Signatures = [new DsseSignature { KeyId = signature.KeyId, Sig = Convert.ToBase64String(signature.Signature) }],
        };
    }

    /// <summary>True when some signature of the envelope verifies under <paramref name="publicKey"/>.</summary>
    public static bool Verify(DsseEnvelope envelope, ECDsa publicKey)
    {
        byte[] payload;
        try
        {
            payload = Convert.FromBase64String(envelope.Payload);
        }
        catch (FormatException)
        {
            return false;
        }

        var pae = Pae(envelope.PayloadType, payload);
        foreach (var signature in envelope.Signatures)
        {
            if (EcKeys.TryDecodeBase64(signature.Sig, out var sig)
                && sig.Length == 64
                && publicKey.VerifyData(pae, sig, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
            {
                return true;
            }
        }

        return false;
    }
}
