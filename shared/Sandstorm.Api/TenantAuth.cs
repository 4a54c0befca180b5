using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Errors;
using Sandstorm.Storage;

namespace Sandstorm.Api;

/// <summary>Resolves the calling tenant from <c>Authorization: Bearer &lt;api key&gt;</c>.</summary>
public static class TenantAuth
{
    /// <summary>The tenant of the request's API key; throws 401 when it is missing or unknown.</summary>
    public static async Task<string> RequireTenantAsync(HttpContext http)
    {
        var token = BearerToken(http.Request)
            ?? throw Unauthorized(http, "an API key is required: Authorization: Bearer <key>");
        var keys = http.RequestServices.GetRequiredService<ApiKeyStore>();
        return await keys.ResolveAsync(token, http.RequestAborted)
            ?? throw Unauthorized(http, "the API key is not valid");
    }

    public static string? BearerToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string prefix = "Bearer ";
        return header.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && header.Length > prefix.Length
            ? header[prefix.Length..].Trim()
            : null;
    }

    private static SandstormException Unauthorized(HttpContext http, string detail)
    {
        http.Response.Headers.WWWAuthenticate = "Bearer";
        return new SandstormException(ErrorCodes.Unauthorized, detail, StatusCodes.Status401Unauthorized);
    }
}
