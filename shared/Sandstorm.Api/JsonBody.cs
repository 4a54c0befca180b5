using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Sandstorm.Core;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Validation;

namespace Sandstorm.Api;

/// <summary>Reads JSON bodies strictly, turning every kind of bad body into a <see cref="SandstormException"/>.</summary>
public static class JsonBody
{
    /// <summary>Largest body accepted: 1 MiB of code plus 10 MiB of files plus JSON escaping headroom.</summary>
    public const long MaxBytes = 24L * 1024 * 1024;

    public static async Task<T> ReadAsync<T>(HttpRequest request, CancellationToken cancellationToken)
        where T : class
    {
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxBytes;
        }

        if (request.ContentLength > MaxBytes)
        {
            throw new SandstormException(ErrorCodes.PayloadTooLarge, $"the body is larger than {MaxBytes} bytes", 413);
        }

        if (request.ContentType is { } type && !type.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            throw new SandstormException(ErrorCodes.UnsupportedMediaType, $"expected application/json, got '{type}'", 415);
        }

        try
        {
            var body = await JsonSerializer.DeserializeAsync<T>(request.Body, SandstormJson.Strict, cancellationToken)
                ?? throw new SandstormException(ErrorCodes.MalformedJson, "the body is empty or null", 400);
            NullElements.Reject(body);
            return body;
        }
        catch (JsonException e)
        {
            throw Malformed(e, typeof(T).Name);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == 413)
        {
            throw new SandstormException(ErrorCodes.PayloadTooLarge, $"the body is larger than {MaxBytes} bytes", 413);
        }
    }

    /// <summary>
    /// A <c>malformed-json</c> problem for a body that did not parse as <paramref name="what"/>, naming the field at fault
    /// (<c>constraints.maxCots</c>) in <c>errors</c> when the parser knows it.
    /// </summary>
    public static SandstormException Malformed(JsonException e, string what)
    {
        var field = FieldOf(e);
        var message = FirstSentence(e.Message);
        return new SandstormException(
            ErrorCodes.MalformedJson,
            $"the body is not a valid {what}{(field is null ? "" : $" at '{field}'")}: {message}",
            400,
            field is null ? null : new Dictionary<string, string[]> { [field] = [message] });
    }

    /// <summary>
    /// The field a parse error is about: the path of the value (<c>$.constraints.maxCots</c>), or — for an unknown or
    /// repeated property, where the path is of the object holding it — the property named in the message.
    /// </summary>
    private static string? FieldOf(JsonException e)
    {
        var path = e.Path is { Length: > 1 } p && p.StartsWith("$.", StringComparison.Ordinal) ? p[2..] : null;
        var quoted = System.Text.RegularExpressions.Regex.Match(e.Message, "property '([^']+)'|property name '([^']+)'");
        if (quoted.Success)
        {
            var name = quoted.Groups[1].Success ? quoted.Groups[1].Value : quoted.Groups[2].Value;
            return path is null || path.EndsWith(name, StringComparison.OrdinalIgnoreCase) ? path ?? name : $"{path}.{name}";
        }

        return path;
    }

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end > 0 ? message[..end] : message;
    }
}
