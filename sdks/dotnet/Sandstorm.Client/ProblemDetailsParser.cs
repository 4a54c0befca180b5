using System.Text.Json;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;

namespace Sandstorm.Client;

/// <summary>Reads an RFC 9457 problem: its stable code (the last segment of <c>type</c>) becomes the exception's <c>ErrorCode</c>.</summary>
internal sealed class ProblemDetailsParser : RequestFailedDetailsParser
{
    public const string TypePrefix = "https://sandstorm.dev/problems/";

    public static ProblemDetailsParser Instance { get; } = new();

    public override bool TryParse(Response response, out ResponseError? error, out IDictionary<string, string>? data)
    {
        error = null;
        data = null;
        try
        {
            var content = response.Content;
            if (content is null || content.ToMemory().Length == 0)
            {
                return false;
            }

            using var document = JsonDocument.Parse(content.ToMemory());
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return false;
            }

            var type = root.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            var code = root.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.String
                ? c.GetString()
                : type is not null && type.StartsWith(TypePrefix, StringComparison.Ordinal) ? type[TypePrefix.Length..] : null;
            var detail = root.TryGetProperty("detail", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
            error = new ResponseError(code, detail ?? response.ReasonPhrase);
            data = new Dictionary<string, string>(StringComparer.Ordinal);
            if (type is not null)
            {
                data["type"] = type;
            }

            if (root.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Object)
            {
                foreach (var field in errors.EnumerateObject())
                {
                    data["errors." + field.Name] = field.Value.ValueKind == JsonValueKind.Array
                        ? string.Join("; ", field.Value.EnumerateArray().Select(e => e.ToString()))
                        : field.Value.ToString();
                }
            }

            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}

/// <summary>Sends <c>Authorization: Bearer {key}</c> on every request.</summary>
internal sealed class BearerKeyPolicy(AzureKeyCredential credential) : HttpPipelineSynchronousPolicy
{
    public override void OnSendingRequest(HttpMessage message) => message.Request.Headers.SetValue("Authorization", "Bearer " + credential.Key);
}
