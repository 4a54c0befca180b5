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
    /// The local host: its routing already answers 404 (no route) and 405 (a route with other methods, with <c>Allow</c>)
    /// for every mapped endpoint; this gives those and any other error status left without a body a problem+json body.
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

    private static Task ForStatusAsync(HttpContext http)
    {
        var status = http.Response.StatusCode;
        var result = status switch
        {
            StatusCodes.Status404NotFound => NotFound(http),
            StatusCodes.Status405MethodNotAllowed => MethodNotAllowed(http, http.Response.Headers.Allow.ToString().Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)),
            StatusCodes.Status401Unauthorized => Problems.Unauthorized("a credential is required"),
            _ => Problems.Of(status >= 500 ? ErrorCodes.Internal : ErrorCodes.ValidationFailed, $"the request failed with status {status}", status),
        };
        return result.ExecuteAsync(http);
    }

    private static IResult NotFound(HttpContext http) =>
        Problems.Of(ErrorCodes.NotFound, $"there is no {http.Request.Method} {http.Request.Path} here (see the API section of the README)", StatusCodes.Status404NotFound);

    private static IResult MethodNotAllowed(HttpContext http, IReadOnlyList<string> allowed) =>
        Problems.Of(
            ErrorCodes.MethodNotAllowed,
            $"{http.Request.Method} is not allowed on {http.Request.Path}" + (allowed.Count > 0 ? $"; use {string.Join(" or ", allowed)}" : ""),
            StatusCodes.Status405MethodNotAllowed);
}
