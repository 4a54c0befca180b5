using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;

namespace Sandstorm.Security.Signing;

/// <summary>Transport, retry and diagnostics options of <see cref="KeyVaultSigner"/> (Azure.Core client options).</summary>
public sealed class KeyVaultSignerOptions : ClientOptions
{
}

/// <summary>
/// Signs through the Key Vault keys REST API (api-version 7.4), so the private key never leaves the vault. Talks REST
/// over Azure.Core's pipeline (bearer token for https://vault.azure.net, retries on 408/429/5xx) because the Key Vault
/// keys SDK package is not available here.
/// </summary>
public sealed class KeyVaultSigner : IProvenanceSigner
{
    /// <summary>Token scope of Key Vault's data plane.</summary>
    public const string Scope = "https://vault.azure.net/.default";

    /// <summary>REST API version spoken.</summary>
    public const string ApiVersion = "7.4";

    private readonly HttpPipeline _pipeline;
    private readonly Uri _vaultUri;
    private readonly string _keyName;
    private readonly string? _configuredVersion;
    private readonly SemaphoreSlim _currentLock = new(1, 1);
    private readonly ConcurrentDictionary<string, SigningKey> _keys = new(StringComparer.Ordinal);
    private SigningKey? _current;

    /// <summary>Creates a signer for key <paramref name="keyName"/> (pinned to <paramref name="keyVersion"/> when given, else the version current at first use).</summary>
    public KeyVaultSigner(Uri vaultUri, string keyName, string? keyVersion, TokenCredential credential, KeyVaultSignerOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(keyName);
        _vaultUri = new Uri(vaultUri.GetLeftPart(UriPartial.Authority));
        _keyName = keyName;
        _configuredVersion = string.IsNullOrWhiteSpace(keyVersion) ? null : keyVersion;

        // Bearer per retry: a retried request after a token expiry must carry a fresh token.
        _pipeline = HttpPipelineBuilder.Build(
            options ?? new KeyVaultSignerOptions(),
            perCallPolicies: [],
            perRetryPolicies: [new BearerTokenAuthenticationPolicy(credential, Scope)],
            new ResponseClassifier());
    }

    public async Task<ProvenanceSignature> SignDigestAsync(byte[] sha256Digest, CancellationToken cancellationToken)
    {
        if (sha256Digest.Length != 32)
        {
            throw new ArgumentException("expected a SHA-256 digest (32 bytes)", nameof(sha256Digest));
        }

        var key = await GetPublicKeyAsync(cancellationToken);
        var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string>
        {
            ["alg"] = "ES256",
            ["value"] = Base64Url.Encode(sha256Digest),
        });

        using var message = _pipeline.CreateMessage();
        message.Request.Method = RequestMethod.Post;
        message.Request.Uri.Reset(new Uri(key.KeyId.TrimEnd('/') + "/sign"));
        message.Request.Uri.AppendQuery("api-version", ApiVersion);
        message.Request.Headers.Add("Content-Type", "application/json");
        message.Request.Headers.Add("Accept", "application/json");
        message.Request.Content = RequestContent.Create(body);
        await _pipeline.SendAsync(message, cancellationToken);

        using var json = ReadJson(message.Response);
        var kid = json.RootElement.GetProperty("kid").GetString() ?? key.KeyId;
        var signature = Base64Url.Decode(json.RootElement.GetProperty("value").GetString()
            ?? throw new InvalidOperationException("Key Vault sign response has no value"));

        // Check the vault's answer before it goes into an envelope that lives forever: a wrong key version or
        // signature format would otherwise surface only when someone tries to verify.
        using var verifier = EcKeys.FromJwk(key.Jwk);
        if (signature.Length != 64 || !verifier.VerifyHash(sha256Digest, signature, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
        {
            throw new CryptographicException($"Key Vault returned a signature that does not verify under {key.KeyId}");
        }

        return new ProvenanceSignature(kid, signature);
    }

    public async Task<SigningKey> GetPublicKeyAsync(CancellationToken cancellationToken)
    {
        if (_current is { } current)
        {
            return current;
        }

        await _currentLock.WaitAsync(cancellationToken);
        try
        {
            if (_current is null)
            {
                var path = _configuredVersion is null ? $"keys/{Uri.EscapeDataString(_keyName)}" : $"keys/{Uri.EscapeDataString(_keyName)}/{Uri.EscapeDataString(_configuredVersion)}";
                _current = await FetchKeyAsync(new Uri(_vaultUri, path), cancellationToken);
                _keys[_current.KeyId] = _current;
            }

            return _current;
        }
        finally
        {
            _currentLock.Release();
        }
    }

    public async Task<SigningKey> GetPublicKeyAsync(string keyId, CancellationToken cancellationToken)
    {
        if (_keys.TryGetValue(keyId, out var known))
        {
            return known;
        }

        // Only ever fetch versions of our own key from our own vault: a key id comes from envelopes, which are input.
        var prefix = new Uri(_vaultUri, $"keys/{Uri.EscapeDataString(_keyName)}/").AbsoluteUri;
        if (!keyId.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) || keyId.Length == prefix.Length || keyId[prefix.Length..].Contains('/', StringComparison.Ordinal))
        {
            throw new KeyNotFoundException($"key '{keyId}' is not a version of {prefix}");
        }

        var key = await FetchKeyAsync(new Uri(keyId), cancellationToken);
        _keys[key.KeyId] = key;
        return key;
    }

    private async Task<SigningKey> FetchKeyAsync(Uri keyUri, CancellationToken cancellationToken)
    {
        using var message = _pipeline.CreateMessage();
        message.Request.Method = RequestMethod.Get;
        message.Request.Uri.Reset(keyUri);
        message.Request.Uri.AppendQuery("api-version", ApiVersion);
        message.Request.Headers.Add("Accept", "application/json");
        await _pipeline.SendAsync(message, cancellationToken);

        using var json = ReadJson(message.Response);
        var key = json.RootElement.GetProperty("key");
        var jwk = new EcJwk(
            key.GetProperty("kty").GetString() ?? "",
            key.TryGetProperty("crv", out var crv) ? crv.GetString() ?? "" : "",
            key.GetProperty("x").GetString() ?? "",
            key.GetProperty("y").GetString() ?? "");
        var kid = key.GetProperty("kid").GetString() ?? throw new InvalidOperationException("Key Vault key has no kid");
        using var ecdsa = EcKeys.FromJwk(jwk);
        return EcKeys.Describe(kid, ecdsa) with { Jwk = jwk with { Kty = "EC" } };
    }

    private static JsonDocument ReadJson(Response response)
    {
        // RequestFailedException reads Key Vault's {"error":{"code","message"}} body into its message and ErrorCode.
        if (response.Status is < 200 or > 299)
        {
            throw new RequestFailedException(response);
        }

        return JsonDocument.Parse(response.Content.ToMemory());
    }
}
