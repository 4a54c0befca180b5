using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sandstorm.Providers.Aca;

// Dynamic sessions data-plane payloads, api-version 2024-02-02-preview (code interpreter pools).

internal sealed record AcaExecuteRequest([property: JsonPropertyName("properties")] AcaExecuteProperties Properties);

internal sealed record AcaExecuteProperties
{
    [JsonPropertyName("codeInputType")]
    public string CodeInputType { get; init; } = "inline";

    [JsonPropertyName("executionType")]
    public string ExecutionType { get; init; } = "synchronous";

    [JsonPropertyName("code")]
    public required string Code { get; init; }
}

internal sealed record AcaExecuteResponse([property: JsonPropertyName("properties")] AcaExecuteResult? Properties);

internal sealed record AcaExecuteResult
{
    /// <summary>Success, Failure or Timeout.</summary>
    [JsonPropertyName("status")]
    public string? Status { get; init; }

    [JsonPropertyName("stdout")]
    public string? Stdout { get; init; }

    [JsonPropertyName("stderr")]
    public string? Stderr { get; init; }

    /// <summary>The value of the last expression, like a notebook cell.</summary>
    [JsonPropertyName("result")]
    public JsonElement? Result { get; init; }

    [JsonPropertyName("executionTimeInMilliseconds")]
    public long? ExecutionTimeInMilliseconds { get; init; }
}
