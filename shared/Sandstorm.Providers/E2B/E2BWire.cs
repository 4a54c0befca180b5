using System.Text.Json.Serialization;

namespace Sandstorm.Providers.E2B;

// E2B control-plane payloads (OpenAPI: NewSandbox, Sandbox, SandboxDetail). Only the fields we use.

internal sealed record E2BNewSandbox
{
    [JsonPropertyName("templateID")]
    public required string TemplateId { get; init; }

    [JsonPropertyName("timeout")]
    public int Timeout { get; init; }

    [JsonPropertyName("metadata")]
    public Dictionary<string, string>? Metadata { get; init; }

    [JsonPropertyName("envVars")]
    public Dictionary<string, string>? EnvVars { get; init; }

    [JsonPropertyName("allow_internet_access")]
    public bool AllowInternetAccess { get; init; }
}

internal sealed record E2BSandbox
{
    [JsonPropertyName("sandboxID")]
    public string? SandboxId { get; init; }

    [JsonPropertyName("envdVersion")]
    public string? EnvdVersion { get; init; }

    [JsonPropertyName("envdAccessToken")]
    public string? EnvdAccessToken { get; init; }

    [JsonPropertyName("domain")]
    public string? Domain { get; init; }
}

internal sealed record E2BTimeoutRequest([property: JsonPropertyName("timeout")] int Timeout);

/// <summary>One entry of <c>GET /v2/sandboxes</c> (ListedSandbox).</summary>
internal sealed record E2BListedSandbox
{
    [JsonPropertyName("sandboxID")]
    public string? SandboxId { get; init; }

    /// <summary>running or paused.</summary>
    [JsonPropertyName("state")]
    public string? State { get; init; }

    [JsonPropertyName("metadata")]
    public Dictionary<string, string>? Metadata { get; init; }
}
