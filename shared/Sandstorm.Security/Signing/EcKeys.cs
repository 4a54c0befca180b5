using System.Security.Cryptography;

namespace Sandstorm.Security.Signing;

/// <summary>Conversions between P-256 public keys, PEM, JWK and key ids.</summary>
public static class EcKeys
{
    /// <summary>Imports a SubjectPublicKeyInfo PEM as a P-256 verification key.</summary>
    public static ECDsa ImportPublicPem(string pem)
    {
        var key = ECDsa.Create();
        key.ImportFromPem(pem);
        if (key.KeySize != 256)
        {
            key.Dispose();
            throw new CryptographicException("expected a P-256 key");
        }

        return key;
    }

    /// <summary>Builds a verification key from JWK coordinates.</summary>
    public static ECDsa FromJwk(EcJwk jwk)
    {
        if (jwk.Kty is not ("EC" or "EC-HSM") || jwk.Crv != "P-256")
        {
            throw new CryptographicException($"unsupported key {jwk.Kty}/{jwk.Crv}; ES256 needs an EC P-256 key");
        }

        return ECDsa.Create(new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint { X = Base64Url.Decode(jwk.X), Y = Base64Url.Decode(jwk.Y) },
        });
    }

    /// <summary>The public parts of a key as PEM and JWK.</summary>
    public static SigningKey Describe(string keyId, ECDsa key)
    {
        var parameters = key.ExportParameters(includePrivateParameters: false);
        var jwk = new EcJwk("EC", "P-256", Base64Url.Encode(parameters.Q.X!), Base64Url.Encode(parameters.Q.Y!));
        return new SigningKey(keyId, key.ExportSubjectPublicKeyInfoPem(), jwk);
    }

    /// <summary>Stable id of a local key: <c>sha256:</c> and the hex digest of its SubjectPublicKeyInfo.</summary>
    public static string LocalKeyId(ECDsa key) =>
        "sha256:" + Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()));

    /// <summary>Decodes standard base64, false when malformed.</summary>
    public static bool TryDecodeBase64(string value, out byte[] bytes)
    {
        try
        {
            bytes = Convert.FromBase64String(value);
            return true;
        }
        catch (FormatException)
        {
            bytes = [];
            return false;
        }
    }
}

/// <summary>Unpadded base64url (RFC 4648 §5), as JOSE and Key Vault use it.</summary>
public static class Base64Url
{
    public static string Encode(ReadOnlySpan<byte> bytes) => System.Buffers.Text.Base64Url.EncodeToString(bytes);

    public static byte[] Decode(string value) => System.Buffers.Text.Base64Url.DecodeFromChars(value);
}
