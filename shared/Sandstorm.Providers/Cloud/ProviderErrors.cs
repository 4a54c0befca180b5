using System.Net;
using System.Text.Json;

namespace Sandstorm.Providers.Cloud;

/// <summary>Turns provider failures (HTTP statuses and error bodies) into <see cref="ProviderException"/>s with stable codes.</summary>
public static class ProviderErrors
{
    /// <summary>Maps an unsuccessful HTTP response. <paramref name="failureCode"/> is the code for a plain 4xx on this operation.</summary>
    public static ProviderException FromHttp(string provider, string operation, HttpStatusCode status, string body, TimeSpan? retryAfter, string failureCode)
    {
        var mapped = MapStatus(provider, operation, status, body, retryAfter, failureCode);
        // A 4xx is the provider refusing the request before acting on it (408 is a timeout, so it may have acted).
        return (int)status is >= 400 and < 500 and not 408 ? mapped.AsNeverStarted() : mapped;
    }

    /// <summary>The connection failed or broke: transient. When it failed before the request was sent, nothing started.</summary>
    public static ProviderException Unreachable(string provider, string operation, Exception inner) =>
        new(provider, CloudErrorCodes.Unavailable, $"{provider} {operation}: provider unreachable ({inner.Message})", transient: true, inner)
        {
            NeverStarted = NotDelivered(inner),
        };

    /// <summary>
    /// True when the request provably never left this process or never reached the provider: the connection could not be
    /// established (refused, no route, name resolution, TLS handshake) or the circuit was open. Such a call can be repeated
    /// even when it is not idempotent. A connection that broke after it was established proves nothing.
    /// </summary>
    public static bool NotDelivered(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case Polly.CircuitBreaker.BrokenCircuitException:
                    return true;
                case HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError }:
                    return true;
                case HttpRequestException:
                    return false;
                // gRPC reports a connection it could not open with the socket error itself.
                case System.Net.Sockets.SocketException
                {
                    SocketErrorCode: System.Net.Sockets.SocketError.ConnectionRefused or System.Net.Sockets.SocketError.HostNotFound
                        or System.Net.Sockets.SocketError.HostUnreachable or System.Net.Sockets.SocketError.NetworkUnreachable
                        or System.Net.Sockets.SocketError.TryAgain or System.Net.Sockets.SocketError.NoData,
                }:
                    return true;
                case Grpc.Core.RpcException rpc:
                    return rpc.StatusCode == Grpc.Core.StatusCode.Unavailable && NotDelivered(rpc.Status.DebugException);
            }
        }

        return false;
    }

    private static ProviderException MapStatus(string provider, string operation, HttpStatusCode status, string body, TimeSpan? retryAfter, string failureCode)
    {
        var message = ExtractMessage(body);
        var inner = new HttpStatusFailure(status, body, retryAfter);
        var text = $"{provider} {operation} failed with HTTP {(int)status}: {message}";
        var code = (int)status;

        if (MentionsOutOfMemory(message))
        {
            return new ProviderException(provider, CloudErrorCodes.OutOfMemory, text, transient: false, inner);
        }

        return code switch
        {
            401 => new ProviderException(provider, CloudErrorCodes.Unauthorized, text, false, inner),
            402 => new ProviderException(provider, CloudErrorCodes.QuotaExceeded, text, false, inner),
            403 when MentionsQuota(message) => new ProviderException(provider, CloudErrorCodes.QuotaExceeded, text, false, inner),
            403 => new ProviderException(provider, CloudErrorCodes.Forbidden, text, false, inner),
            404 => new ProviderException(provider, CloudErrorCodes.NotFound, text, false, inner),
            408 => new ProviderException(provider, CloudErrorCodes.Timeout, text, true, inner),
            // 429 is the concurrency cap or a rate limit: it clears by itself, so it is transient.
            429 => new ProviderException(provider, CloudErrorCodes.RateLimited, text, true, inner),
            502 or 503 or 504 => new ProviderException(provider, CloudErrorCodes.Unavailable, text, true, inner),
            >= 500 => new ProviderException(provider, failureCode, text, true, inner),
            _ => new ProviderException(provider, failureCode, text, false, inner),
        };
    }

    /// <summary>A 2xx whose body we cannot use. Transient: it is most often a gateway answering in the provider's stead.</summary>
    public static ProviderException BadResponse(string provider, string operation, string detail, Exception? inner = null) =>
        new(provider, CloudErrorCodes.BadResponse, $"{provider} {operation}: malformed response ({detail})", transient: true, inner);

    /// <summary>The most useful human message in a provider's error body (E2B, Daytona, Azure and problem+json shapes).</summary>
    public static string ExtractMessage(string body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return "(empty body)";
        }

        try
        {
            using var doc = JsonDocument.Parse(body);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (TryString(root, "message", out var m) || TryString(root, "detail", out m) || TryString(root, "title", out m))
                {
                    return m;
                }

                if (root.TryGetProperty("error", out var error))
                {
                    if (error.ValueKind == JsonValueKind.String)
                    {
                        return error.GetString() ?? body;
                    }

                    if (error.ValueKind == JsonValueKind.Object && TryString(error, "message", out m))
                    {
                        return m;
                    }
                }
            }
        }
        catch (JsonException)
        {
            // Not JSON (a gateway's HTML page, plain text): the body itself is the message.
        }

        return body.Length <= 300 ? body.Trim() : body[..300].Trim() + "…";
    }

    private static bool TryString(JsonElement obj, string name, out string value)
    {
        if (obj.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String && !string.IsNullOrEmpty(p.GetString()))
        {
            value = p.GetString()!;
            return true;
        }

        value = "";
        return false;
    }

    private static bool MentionsQuota(string message) =>
        message.Contains("quota", StringComparison.OrdinalIgnoreCase)
        || message.Contains("credit", StringComparison.OrdinalIgnoreCase)
        || message.Contains("billing", StringComparison.OrdinalIgnoreCase);

    internal static bool MentionsOutOfMemory(string message) =>
        message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
        || message.Contains("OOM", StringComparison.Ordinal)
        || message.Contains("OutOfMemory", StringComparison.OrdinalIgnoreCase);
}
