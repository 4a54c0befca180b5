using System.Security.Cryptography;
using System.Text;

namespace Sandstorm.Security.Signing;

/// <summary>
/// Signs with a P-256 key kept in a PKCS#8 PEM file, for the one-machine setup where there is no Key Vault.
/// The file is created on first start, readable by the owner only.
/// </summary>
public sealed class LocalSigner : IProvenanceSigner, IDisposable
{
    private readonly ECDsa _key;
    private readonly SigningKey _public;

    /// <summary>Loads the key at <paramref name="keyPath"/>, creating it (mode 0600) when absent.</summary>
    public LocalSigner(string keyPath)
    {
        _key = LoadOrCreate(Path.GetFullPath(keyPath));
        _public = EcKeys.Describe(EcKeys.LocalKeyId(_key), _key);
    }

    /// <summary>Path used when configuration names none: under the current directory, like the rest of local state.</summary>
    public static string DefaultPath => Path.Combine(".sandstorm", "signing-key.pem");

    public Task<ProvenanceSignature> SignDigestAsync(byte[] sha256Digest, CancellationToken cancellationToken)
    {
        if (sha256Digest.Length != 32)
        {
            throw new ArgumentException("expected a SHA-256 digest (32 bytes)", nameof(sha256Digest));
        }

        // .NET's default signature format for ECDsa is IEEE P1363 (r||s), the JWS/Key Vault format.
        var signature = _key.SignHash(sha256Digest, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return Task.FromResult(new ProvenanceSignature(_public.KeyId, signature));
    }

    public Task<SigningKey> GetPublicKeyAsync(CancellationToken cancellationToken) => Task.FromResult(_public);

    public Task<SigningKey> GetPublicKeyAsync(string keyId, CancellationToken cancellationToken) =>
        keyId == _public.KeyId
            ? Task.FromResult(_public)
            : throw new KeyNotFoundException($"unknown signing key '{keyId}'");

    public void Dispose() => _key.Dispose();

    private static ECDsa LoadOrCreate(string path)
    {
        var key = ECDsa.Create();
        if (File.Exists(path))
        {
            key.ImportFromPem(File.ReadAllText(path));
            if (key.KeySize != 256)
            {
                throw new CryptographicException($"signing key file holds a {key.KeySize}-bit key; ES256 needs P-256");
            }

            return key;
        }

        key.GenerateKey(ECCurve.NamedCurves.nistP256);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var pem = Encoding.ASCII.GetBytes(key.ExportPkcs8PrivateKeyPem());

        // CreateNew with the mode set at creation: the key is never readable by others, not even briefly, and two
        // processes starting together cannot both write a key (the loser reads the winner's).
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using var stream = new FileStream(path, options);
            stream.Write(pem);
            stream.Flush(flushToDisk: true);
        }
        catch (IOException) when (File.Exists(path))
        {
            key.Dispose();
            return LoadOrCreate(path);
        }

        return key;
    }
}
