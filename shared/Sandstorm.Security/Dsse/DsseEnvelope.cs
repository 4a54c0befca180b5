using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sandstorm.Security.Dsse;

/// <summary>A DSSE envelope: the payload (base64) and its type, and signatures over PAE(payloadType, payload).</summary>
public sealed record DsseEnvelope
{
    [JsonPropertyName("payloadType")]
    public required string PayloadType { get; init; }

    /// <summary>Standard base64 of the payload bytes.</summary>
    [JsonPropertyName("payload")]
    public required string Payload { get; init; }

    [JsonPropertyName("signatures")]
    public required IReadOnlyList<DsseSignature> Signatures { get; init; }

    /// <summary>
    /// The exact bytes stored in the envelope blob and hashed into the log leaf. Fixed property order, no whitespace,
    /// so a verifier that re-serialises a parsed envelope gets the same bytes back.
    /// </summary>
    public byte[] ToCanonicalJson() => JsonSerializer.SerializeToUtf8Bytes(this, CanonicalOptions);

    /// <summary>Parses an envelope blob.</summary>
    public static DsseEnvelope Parse(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize<DsseEnvelope>(json, CanonicalOptions) ?? throw new JsonException("empty envelope");

    // Minimal escaping: only '"', '\' and control characters are escaped, so any JSON writer that keeps this property
    // order and writes no whitespace reproduces the bytes (the default encoder would write '+' as \u002B).
    private static readonly JsonSerializerOptions CanonicalOptions = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        WriteIndented = false,
    };
}

/// <summary>One signature of a DSSE envelope.</summary>
public sealed record DsseSignature
{
    /// <summary>Identifies the key (Key Vault key id URL, or <c>sha256:</c> of the local key's SubjectPublicKeyInfo).</summary>
    [JsonPropertyName("keyid")]
    public required string KeyId { get; init; }

    /// <summary>Standard base64 of the ES256 signature as raw r||s (64 bytes).</summary>
    [JsonPropertyName("sig")]
    public required string Sig { get; init; }
}
