using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sandstorm.Security.Dsse;
using Sandstorm.Security.Signing;

namespace Sandstorm.Security.Tests;

/// <summary>
/// <see cref="KeyVaultSigner"/> against a local Kestrel server that speaks the Key Vault keys REST API (sign, get key,
/// bearer challenge, throttling and server faults). The fake stands in because Key Vault itself cannot run here; the
/// token credential is fake for the same reason.
/// </summary>
public sealed class KeyVaultSignerTests : IAsyncLifetime
{
    private const string Token = "fake-access-token";
    private const string Version = "0123456789abcdef0123456789abcdef";
    private readonly ECDsa _vaultKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ConcurrentQueue<int> _faults = new();
    private readonly ConcurrentQueue<string> _requests = new();
    private X509Certificate2 _certificate = null!;
    private WebApplication _app = null!;
    private Uri _vault = null!;

    public async Task InitializeAsync()
    {
        _certificate = CreateCertificate();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();

        // Azure.Core's BearerTokenAuthenticationPolicy refuses to put a token on a non-TLS request, so the fake serves
        // HTTPS with a certificate made here, and the client trusts exactly that certificate (pinned by thumbprint)
        // through its transport's handler. No switch that weakens the production check is needed.
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(_certificate)));
        _app = builder.Build();
        _app.Use(async (context, next) =>
        {
            _requests.Enqueue($"{context.Request.Method} {context.Request.Path}");
            if (context.Request.Query["api-version"] != KeyVaultSigner.ApiVersion)
            {
                await Error(context, 400, "BadParameter", "The specified version of the api is not supported");
                return;
            }

            if (context.Request.Headers.Authorization.ToString() != "Bearer " + Token)
            {
                // As Key Vault does: a challenge naming the authority and the resource to get a token for.
                context.Response.Headers.WWWAuthenticate = "Bearer authorization=\"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000\", resource=\"https://vault.azure.net\"";
                await Error(context, 401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.");
                return;
            }

            if (_faults.TryDequeue(out var status))
            {
                if (status == 429)
                {
                    context.Response.Headers.RetryAfter = "0";
                }

                await Error(context, status, status == 429 ? "Throttled" : "ServiceUnavailable", "injected fault");
                return;
            }

            await next(context);
        });
        _app.MapGet("/keys/{name}", (string name) => KeyBody(name));
        _app.MapGet("/keys/{name}/{version}", (string name, string version) => version == Version ? KeyBody(name) : Results.NotFound());
        _app.MapPost("/keys/{name}/{version}/sign", async (string name, string version, HttpRequest request) =>
        {
            using var body = await JsonDocument.ParseAsync(request.Body);
            if (body.RootElement.GetProperty("alg").GetString() != "ES256")
            {
                return Results.BadRequest();
            }

            var digest = Base64Url.Decode(body.RootElement.GetProperty("value").GetString()!);
            var signature = _vaultKey.SignHash(digest, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
            return Results.Json(new Dictionary<string, string> { ["kid"] = Kid(name), ["value"] = Base64Url.Encode(signature) });
        });
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _vault = new Uri(address.Replace("[::1]", "127.0.0.1", StringComparison.Ordinal) + "/");
    }

    [Fact]
    public async Task SignDigestAsync_SignsInTheVault_SignatureVerifiesUnderVaultKey()
    {
        var signer = Signer(new FakeCredential(Token));
        var digest = SHA256.HashData("statement"u8);

        var signature = await signer.SignDigestAsync(digest, CancellationToken.None);

        Assert.Equal(Kid("provenance"), signature.KeyId);
        Assert.Equal(64, signature.Signature.Length);
        Assert.True(_vaultKey.VerifyHash(digest, signature.Signature, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
        Assert.Contains($"POST /keys/provenance/{Version}/sign", _requests);

        // An envelope signed through the vault verifies with the PEM the signer publishes.
        var envelope = await DsseV1.SignAsync(signer, DsseV1.InTotoPayloadType, "{}"u8.ToArray(), CancellationToken.None);
        var key = await signer.GetPublicKeyAsync(CancellationToken.None);
        using var verifier = EcKeys.ImportPublicPem(key.PublicKeyPem);
        Assert.True(DsseV1.Verify(envelope, verifier));
        Assert.Equal(Kid("provenance"), key.KeyId);
    }

    [Fact]
    public async Task GetPublicKeyAsync_ReturnsJwkOfVaultKey_AndRefusesForeignKeyIds()
    {
        var signer = Signer(new FakeCredential(Token));
        var key = await signer.GetPublicKeyAsync(CancellationToken.None);
        var q = _vaultKey.ExportParameters(false).Q;

        Assert.Equal(("EC", "P-256"), (key.Jwk.Kty, key.Jwk.Crv));
        Assert.Equal(q.X, Base64Url.Decode(key.Jwk.X));
        Assert.Equal(q.Y, Base64Url.Decode(key.Jwk.Y));
        Assert.Same(key, await signer.GetPublicKeyAsync(Kid("provenance"), CancellationToken.None));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => signer.GetPublicKeyAsync("https://evil.example/keys/provenance/1", CancellationToken.None));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => signer.GetPublicKeyAsync(new Uri(_vault, "keys/other/1").AbsoluteUri, CancellationToken.None));
    }

    [Fact]
    public async Task Request_WithoutBearerToken_Gets401Challenge()
    {
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert?.Thumbprint == _certificate.Thumbprint };
        using var client = new HttpClient(handler);

        using var response = await client.GetAsync(new Uri(_vault, "keys/provenance?api-version=7.4"));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var challenge = response.Headers.WwwAuthenticate.Single();
        Assert.Equal("Bearer", challenge.Scheme);
        Assert.Contains("resource=\"https://vault.azure.net\"", challenge.Parameter, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SignDigestAsync_TokenRejected_FailsWithVaultError()
    {
        var credential = new FakeCredential("wrong-token");
        var signer = Signer(credential);

        var error = await Assert.ThrowsAsync<RequestFailedException>(() => signer.SignDigestAsync(new byte[32], CancellationToken.None));

        Assert.Equal(401, error.Status);
        Assert.Equal("Unauthorized", error.ErrorCode);
        Assert.Equal([KeyVaultSigner.Scope], credential.Scopes.Distinct());
    }

    [Fact]
    public async Task SignDigestAsync_ThrottledThenServerError_RetriesAndSucceeds()
    {
        var signer = Signer(new FakeCredential(Token));
        await signer.GetPublicKeyAsync(CancellationToken.None);
        _faults.Enqueue(429);
        _faults.Enqueue(503);
        _faults.Enqueue(500);
        var before = _requests.Count;

        var signature = await signer.SignDigestAsync(SHA256.HashData("x"u8), CancellationToken.None);

        Assert.Equal(64, signature.Signature.Length);
        Assert.Equal(4, _requests.Count - before);
    }

    [Fact]
    public async Task SignDigestAsync_PersistentServerError_GivesUpAfterMaxRetries()
    {
        var signer = Signer(new FakeCredential(Token));
        await signer.GetPublicKeyAsync(CancellationToken.None);
        for (var i = 0; i < 10; i++)
        {
            _faults.Enqueue(503);
        }

        var before = _requests.Count;
        var error = await Assert.ThrowsAsync<RequestFailedException>(() => signer.SignDigestAsync(new byte[32], CancellationToken.None));

        Assert.Equal(503, error.Status);
        Assert.Equal(3 + 1, _requests.Count - before);
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        _certificate.Dispose();
        _vaultKey.Dispose();
    }

    private KeyVaultSigner Signer(TokenCredential credential)
    {
        var options = new KeyVaultSignerOptions
        {
            Transport = new HttpClientTransport(new HttpClientHandler
            {
                ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert?.Thumbprint == _certificate.Thumbprint,
            }),
        };

        // Short delays so retry tests take milliseconds; the production defaults back off for seconds.
        options.Retry.Delay = TimeSpan.FromMilliseconds(1);
        options.Retry.MaxDelay = TimeSpan.FromMilliseconds(10);
        options.Retry.MaxRetries = 3;
        return new KeyVaultSigner(_vault, "provenance", null, credential, options);
    }

    private string Kid(string name) => new Uri(_vault, $"keys/{name}/{Version}").AbsoluteUri;

    private IResult KeyBody(string name)
    {
        var q = _vaultKey.ExportParameters(false).Q;
        return Results.Json(new
        {
            key = new Dictionary<string, object>
            {
                ["kid"] = Kid(name),
                ["kty"] = "EC-HSM",
                ["crv"] = "P-256",
                ["x"] = Base64Url.Encode(q.X),
                ["y"] = Base64Url.Encode(q.Y),
                ["key_ops"] = new[] { "sign", "verify" },
            },
            attributes = new { enabled = true, recoveryLevel = "Recoverable" },
        });
    }

    private static Task Error(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsJsonAsync(new { error = new { code, message } });
    }

    private static X509Certificate2 CreateCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));

        // Kestrel on Linux needs the private key in a loadable form: round-trip through PKCS#12.
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }

    private sealed class FakeCredential(string token) : TokenCredential
    {
        public ConcurrentQueue<string> Scopes { get; } = new();

        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
        {
            foreach (var scope in requestContext.Scopes)
            {
                Scopes.Enqueue(scope);
            }

            return new AccessToken(token, DateTimeOffset.UtcNow.AddHours(1));
        }

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            ValueTask.FromResult(GetToken(requestContext, cancellationToken));
    }
}
