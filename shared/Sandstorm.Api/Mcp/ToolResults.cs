using System.Text.Json;
using System.Text.Json.Nodes;
using ModelContextProtocol.Protocol;
using Sandstorm.Core;
using Sandstorm.Core.Errors;

namespace Sandstorm.Api.Mcp;

/// <summary>
/// Tool results as agents read them: the structured content (Sandstorm's JSON shape) and the same JSON as text, for clients
/// that only show text. A refusal is a tool error (<c>isError</c>) carrying the problem's <c>type</c>, code, status and detail.
/// </summary>
public static class ToolResults
{
    public static CallToolResult Ok(object value)
    {
        var node = JsonSerializer.SerializeToNode(value, value.GetType(), SandstormJson.Options) as JsonObject
            ?? throw new InvalidOperationException($"a tool result must be a JSON object, not {value.GetType().Name}");
        return new CallToolResult
        {
            StructuredContent = JsonSerializer.SerializeToElement(node),
            Content = [new TextContentBlock { Text = node.ToJsonString(SandstormJson.Options) }],
        };
    }

    /// <summary>A tool error from a Sandstorm problem: the same <c>type</c>, code and status the REST API would answer.</summary>
    public static CallToolResult Error(SandstormException e)
    {
        var problem = new JsonObject
        {
            ["type"] = ErrorCodes.TypeUri(e.Code),
            ["code"] = e.Code,
            ["status"] = e.Status,
            ["detail"] = e.Message,
        };
        if (e.Errors is { Count: > 0 } errors)
        {
            problem["errors"] = JsonSerializer.SerializeToNode(errors, SandstormJson.Options);
        }

        if (e.RetryAfter is { } after)
        {
            problem["retryAfterSeconds"] = Math.Max(1, (int)Math.Ceiling(after.TotalSeconds));
        }

        return new CallToolResult
        {
            IsError = true,
            StructuredContent = JsonSerializer.SerializeToElement(new JsonObject { ["error"] = problem }),
            Content = [new TextContentBlock { Text = $"{e.Code} ({e.Status}): {e.Message}" }],
        };
    }
}
