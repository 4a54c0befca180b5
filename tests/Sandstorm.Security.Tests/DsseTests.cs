using System.Security.Cryptography;
using System.Text;
using Sandstorm.Security.Dsse;
using Sandstorm.Security.Signing;

namespace Sandstorm.Security.Tests;

public sealed class DsseTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sandstorm-dsse-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public void Pae_SpecExample_MatchesByteForByte()
    {
        // The example of the DSSE protocol document.
        var pae = DsseV1.Pae("http://example.com/HelloWorld", Encoding.UTF8.GetBytes("hello world"));
        Assert.Equal("DSSEv1 29 http://example.com/HelloWorld 11 hello world", Encoding.UTF8.GetString(pae));
    }

    [Fact]
    public async Task LocalSigner_FirstStart_CreatesOwnerOnlyPkcs8KeyAndReloadsIt()
    {
        var path = Path.Combine(_dir, "nested", "signing-key.pem");
        string keyId;
        using (var signer = new LocalSigner(path))
        {
            keyId = (await signer.GetPublicKeyAsync(CancellationToken.None)).KeyId;
        }

        Assert.StartsWith("-----BEGIN PRIVATE KEY-----", await File.ReadAllTextAsync(path));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }

        using var again = new LocalSigner(path);
        Assert.Equal(keyId, (await again.GetPublicKeyAsync(CancellationToken.None)).KeyId);
    }

    [Fact]
    public async Task SignAsync_RoundTrip_VerifiesAndDetectsChanges()
    {
        using var signer = new LocalSigner(Path.Combine(_dir, "k.pem"));
        var key = await signer.GetPublicKeyAsync(CancellationToken.None);
        var envelope = await DsseV1.SignAsync(signer, DsseV1.InTotoPayloadType, Encoding.UTF8.GetBytes("{\"a\":1}"), CancellationToken.None);
        using var verifier = EcKeys.ImportPublicPem(key.PublicKeyPem);

        Assert.Equal(key.KeyId, envelope.Signatures[0].KeyId);
        Assert.Equal(64, Convert.FromBase64String(envelope.Signatures[0].Sig).Length);
        Assert.True(DsseV1.Verify(envelope, verifier));
        Assert.False(DsseV1.Verify(envelope with { Payload = Convert.ToBase64String(Encoding.UTF8.GetBytes("{\"a\":2}")) }, verifier));
        Assert.False(DsseV1.Verify(envelope with { PayloadType = "application/json" }, verifier));
        var sig = Convert.FromBase64String(envelope.Signatures[0].Sig);
        sig[10] ^= 1;
        Assert.False(DsseV1.Verify(envelope with { Signatures = [envelope.Signatures[0] with { Sig = Convert.ToBase64String(sig) }] }, verifier));

        // The verifier also accepts the envelope under the JWK form of the key.
        using var fromJwk = EcKeys.FromJwk(key.Jwk);
        Assert.True(DsseV1.Verify(envelope, fromJwk));
        Assert.Equal(envelope.ToCanonicalJson(), DsseEnvelope.Parse(envelope.ToCanonicalJson()).ToCanonicalJson());
    }

    [Fact]
    public async Task LocalSigner_Signature_IsRawRConcatS()
    {
        using var signer = new LocalSigner(Path.Combine(_dir, "k2.pem"));
        var digest = SHA256.HashData("x"u8);
        var signature = await signer.SignDigestAsync(digest, CancellationToken.None);
        using var verifier = EcKeys.ImportPublicPem((await signer.GetPublicKeyAsync(CancellationToken.None)).PublicKeyPem);
        Assert.True(verifier.VerifyHash(digest, signature.Signature, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}
