namespace Sandstorm.Security.Signing;

/// <summary>Signs SHA-256 digests with an ES256 (P-256) key that the caller never sees.</summary>
public interface IProvenanceSigner
{
    /// <summary>Signs a 32-byte SHA-256 digest; the signature is raw r||s (64 bytes).</summary>
    Task<ProvenanceSignature> SignDigestAsync(byte[] sha256Digest, CancellationToken cancellationToken);

    /// <summary>The public half of the key that signs now.</summary>
    Task<SigningKey> GetPublicKeyAsync(CancellationToken cancellationToken);

    /// <summary>The public half of a key this signer used, by key id (after rotation, older envelopes name older keys).</summary>
    Task<SigningKey> GetPublicKeyAsync(string keyId, CancellationToken cancellationToken);
}

/// <summary>A signature and the id of the key that made it.</summary>
public sealed record ProvenanceSignature(string KeyId, byte[] Signature);

/// <summary>A public verification key: its id, SubjectPublicKeyInfo PEM, and JWK coordinates.</summary>
public sealed record SigningKey(string KeyId, string PublicKeyPem, EcJwk Jwk);

/// <summary>Public EC JWK (RFC 7518): x and y as base64url.</summary>
public sealed record EcJwk(string Kty, string Crv, string X, string Y);
