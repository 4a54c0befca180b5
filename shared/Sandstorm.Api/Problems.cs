using Microsoft.AspNetCore.Http;
using Sandstorm.Core.Errors;

namespace Sandstorm.Api;

/// <summary>RFC 9457 problem+json responses with Sandstorm's stable <c>type</c> URIs.</summary>
public static class Problems
{
    public static IResult Of(string code, string detail, int status, IReadOnlyDictionary<string, string[]>? errors = null)
    {
        var extensions = new Dictionary<string, object?> { ["code"] = code };
        if (errors is not null)
        {
            extensions["errors"] = errors;
        }

        return TypedResults.Problem(detail, statusCode: status, title: Title(status), type: ErrorCodes.TypeUri(code), extensions: extensions);
    }

    public static IResult From(SandstormException e) =>
        e.RetryAfter is { } after ? new RetryAfterResult(Of(e.Code, e.Message, e.Status, e.Errors), after) : Of(e.Code, e.Message, e.Status, e.Errors);

    public static IResult NotFound(string what) => Of(ErrorCodes.NotFound, $"{what} was not found", StatusCodes.Status404NotFound);

    public static IResult Unauthorized(string detail) => Of(ErrorCodes.Unauthorized, detail, StatusCodes.Status401Unauthorized);

    private static string Title(int status) => status switch
    {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload too large",
        415 => "Unsupported media type",
        422 => "Unprocessable request",
        429 => "Too many requests",
        500 => "Internal error",
        507 => "Insufficient storage",
        503 => "Service unavailable",
        _ => "Error",
    };

    /// <summary>A problem with a <c>Retry-After</c> header (whole seconds).</summary>
    private sealed class RetryAfterResult(IResult inner, TimeSpan after) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }
}
