using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Sandstorm.Core;
using Sandstorm.Core.Errors;

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
            return await JsonSerializer.DeserializeAsync<T>(request.Body, SandstormJson.Options, cancellationToken)
                ?? throw new SandstormException(ErrorCodes.MalformedJson, "the body is empty or null", 400);
        }
        catch (JsonException e)
        {
            var where = e.Path is { Length: > 1 } path ? $" at {path}" : "";
            throw new SandstormException(ErrorCodes.MalformedJson, $"the body is not a valid {typeof(T).Name}{where}: {FirstSentence(e.Message)}", 400);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == 413)
        {
            throw new SandstormException(ErrorCodes.PayloadTooLarge, $"the body is larger than {MaxBytes} bytes", 413);
        }
    }

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end > 0 ? message[..end] : message;
    }
}
