using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;
using Sandstorm.Core.Errors;

namespace Sandstorm.Api;

/// <summary>
/// Every answer without a handler's body is problem+json too: an unknown route is 404 <c>not-found</c>, a known route with
/// the wrong method 405 <c>method-not-allowed</c> (with <c>Allow</c>), on both hosts.
/// </summary>
public static class RouteProblems
{
    private static readonly (string Method, TemplateMatcher Matcher)[] Routes =
        [.. ApiRoutes.All.Select(r => (r.Method, new TemplateMatcher(TemplateParser.Parse(r.Route), new RouteValueDictionary())))];

    /// <summary>
    /// The local host: every error status left without a body gets a problem+json one. A 404 whose path is a mapped
    /// route's (any endpoint of the host, not only <see cref="ApiRoutes.All"/>) with other methods becomes 405 with
    /// <c>Allow</c>: ASP.NET Core's routing answers 405 itself only for some route shapes.
    /// </summary>
    public static IApplicationBuilder UseStatusProblems(this IApplicationBuilder app) =>
        app.UseStatusCodePages(context => ForStatusAsync(context.HttpContext));

    /// <summary>
    /// The Functions app's catch-all (<see cref="ApiRoutes.UnmatchedFunction"/>): the Functions host has already tried every
    /// route, so the path is either unknown (404) or a route of <see cref="ApiRoutes.All"/> with other methods (405).
    /// </summary>
    public static IResult Unmatched(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        if (NotOnFunctions(http.Request.Path) is { } missing)
        {
            return Problems.Of(ErrorCodes.NotSupported, missing, StatusCodes.Status501NotImplemented);
        }

        var allowed = AllowedMethods(http.Request.Path);
        if (allowed.Count == 0)
        {
            return NotFound(http);
        }

        http.Response.Headers.Allow = string.Join(", ", allowed);
        return MethodNotAllowed(http, allowed);
    }

    /// <summary>The methods <see cref="ApiRoutes.All"/> maps on <paramref name="path"/> (empty: no route has it).</summary>
    public static IReadOnlyList<string> AllowedMethods(PathString path)
    {
        var methods = new List<string>();
        foreach (var (method, matcher) in Routes)
        {
            if (matcher.TryMatch(path, new RouteValueDictionary()) && !methods.Contains(method))
            {
                methods.Add(method);
            }
        }

        return methods;
    }

    /// <summary>The methods the host's endpoints map on <paramref name="path"/> (empty: none has it, or none restricts methods).</summary>
    private static List<string> MappedMethods(HttpContext http)
    {
        var methods = new List<string>();
        if (http.RequestServices.GetService(typeof(EndpointDataSource)) is not EndpointDataSource endpoints)
        {
            return methods;
        }

        foreach (var endpoint in endpoints.Endpoints.OfType<RouteEndpoint>())
        {
            if (endpoint.Metadata.GetMetadata<HttpMethodMetadata>() is not { HttpMethods.Count: > 0 } verbs)
            {
                continue;
            }

            var matcher = new TemplateMatcher(new RouteTemplate(endpoint.RoutePattern), new RouteValueDictionary());
            if (matcher.TryMatch(http.Request.Path, new RouteValueDictionary()))
            {
                methods.AddRange(verbs.HttpMethods.Where(m => !methods.Contains(m, StringComparer.OrdinalIgnoreCase)));
            }
        }

        return methods;
    }

    private static Task ForStatusAsync(HttpContext http)
    {
        var status = http.Response.StatusCode;
        if (status == StatusCodes.Status404NotFound && http.GetEndpoint() is null && MappedMethods(http) is { Count: > 0 } mapped)
        {
            status = http.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            http.Response.Headers.Allow = string.Join(", ", mapped);
        }

        var result = status switch
        {
            StatusCodes.Status404NotFound => NotFound(http),
            StatusCodes.Status405MethodNotAllowed => MethodNotAllowed(http, http.Response.Headers.Allow.ToString().Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)),
            StatusCodes.Status401Unauthorized => Problems.Unauthorized("a credential is required"),
            _ => Problems.Of(status >= 500 ? ErrorCodes.Internal : ErrorCodes.ValidationFailed, $"the request failed with status {status}", status),
        };
        return result.ExecuteAsync(http);
    }

    /// <summary>
    /// Why the Functions app does not serve a path the local host serves (the MCP server, the OpenAPI document and its
    /// reference page), or null for any other path. They are built on ASP.NET Core endpoints (<c>MapMcp</c>, <c>MapOpenApi</c>),
    /// which the Functions worker does not route; until a trigger hosts them, the app says so instead of a bare 404.
    /// </summary>
    public static string? NotOnFunctions(PathString path)
    {
        if (path.StartsWithSegments(Mcp.McpEndpoints.Route, StringComparison.OrdinalIgnoreCase))
        {
            return $"the MCP server ({Mcp.McpEndpoints.Route}) is not supported on the Azure Functions app yet; use the local host's {Mcp.McpEndpoints.Route} (docs/mcp.md)";
        }

        return path.StartsWithSegments("/openapi", StringComparison.OrdinalIgnoreCase) || path.StartsWithSegments(OpenApi.ApiDocument.ReferenceRoute, StringComparison.OrdinalIgnoreCase)
            ? "the OpenAPI document (/openapi/v1.json) and its reference page (/docs) are not supported on the Azure Functions app yet; the local host serves them, for the same API"
            : null;
    }

    private static IResult NotFound(HttpContext http) =>
        Problems.Of(ErrorCodes.NotFound, $"there is no {http.Request.Method} {http.Request.Path} here (see the API section of the README)", StatusCodes.Status404NotFound);

    private static IResult MethodNotAllowed(HttpContext http, IReadOnlyList<string> allowed) =>
        Problems.Of(
            ErrorCodes.MethodNotAllowed,
            $"{http.Request.Method} is not allowed on {http.Request.Path}" + (allowed.Count > 0 ? $"; use {string.Join(" or ", allowed)}" : ""),
            StatusCodes.Status405MethodNotAllowed);
}
