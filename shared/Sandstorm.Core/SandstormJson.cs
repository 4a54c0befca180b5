using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sandstorm.Core;

/// <summary>The one JSON shape of every Sandstorm payload: camelCase properties, snake_case enum values.</summary>
public static class SandstormJson
{
    /// <summary>Options used on the wire (HTTP), in blobs and in durable payloads.</summary>
    public static JsonSerializerOptions Options { get; } = Create();

    /// <summary>
    /// Options for what callers send (request bodies, batch manifests, queue messages): the same shape, but an unknown
    /// field, a field given twice (in any letter case) or nesting deeper than 64 levels is an error, never silently
    /// dropped — a typo must not downgrade a request (<c>isolationLevle</c> would otherwise fall back to the default).
    /// </summary>
    public static JsonSerializerOptions Strict { get; } = CreateStrict();

    /// <summary>Applies Sandstorm's conventions to an options instance (for hosts that own their options).</summary>
    public static void Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
        options.PropertyNameCaseInsensitive = true;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        options.NumberHandling = JsonNumberHandling.Strict;
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
    }

    private static JsonSerializerOptions CreateStrict()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        Configure(options);
        options.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
        options.AllowDuplicateProperties = false;
        options.MaxDepth = 64;
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        Configure(options);
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
