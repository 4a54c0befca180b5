using System.Reflection;
using Microsoft.AspNetCore.Http;
using Sandstorm.Core.Errors;

namespace Sandstorm.Api;

/// <summary>
/// The console (docs/console.md): static files under <c>/console/</c>, embedded in this assembly at build time from the
/// repository's <c>console/</c> folder and, for the charts, Chart.js's UMD build from <c>node_modules</c> (installed by
/// scripts/setup.sh). Both hosts serve them through this one handler; the pages call the API with the tenant's key.
/// </summary>
public static class ConsoleAssets
{
    /// <summary>Resource name prefix of the embedded files (see Sandstorm.Api.csproj).</summary>
    public const string ResourcePrefix = "console/";

    /// <summary>Where the console is served.</summary>
    public const string BasePath = "/console/";

    private static readonly Assembly Assembly = typeof(ConsoleAssets).Assembly;

    private static readonly HashSet<string> Names = new(
        Assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)),
        StringComparer.Ordinal);

    private static readonly Dictionary<string, string> ContentTypes = new(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
        [".png"] = "image/png",
        [".json"] = "application/json",
    };

    /// <summary>
    /// <c>GET /console/{*path}</c> (no credential: the files hold no data). <c>/console</c> redirects to <c>/console/</c> so
    /// relative module paths resolve; an unknown file is a 404 problem; the charting library missing from the build (no
    /// <c>npm ci</c> before it) is a 503 problem that says so.
    /// </summary>
    public static Task<IResult> GetAsync(HttpContext http, string? path)
    {
        if (string.IsNullOrEmpty(path) && !http.Request.Path.Value!.EndsWith('/'))
        {
            return Task.FromResult(Results.Redirect(BasePath));
        }

        var name = ResourcePrefix + (string.IsNullOrEmpty(path) ? "index.html" : path);
        if (!Names.Contains(name))
        {
            return Task.FromResult(name == ResourcePrefix + "vendor/chart.umd.js"
                ? Problems.Of(ErrorCodes.NotSupported, "the console's charting library was not built in: run scripts/setup.sh (npm ci) and build again", StatusCodes.Status503ServiceUnavailable)
                : Problems.NotFound($"console file '{path}'"));
        }

        var headers = http.Response.Headers;
        headers.XContentTypeOptions = "nosniff";
        headers.CacheControl = "no-cache";
        headers["Referrer-Policy"] = "no-referrer";
        headers.XFrameOptions = "DENY";
        // The API key lives in sessionStorage: only this origin's own scripts may run, and the page talks to this origin only.
        headers.ContentSecurityPolicy =
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
        var type = ContentTypes.GetValueOrDefault(Path.GetExtension(name), "application/octet-stream");
        return Task.FromResult(Results.Stream(Assembly.GetManifestResourceStream(name)!, type));
    }
}
