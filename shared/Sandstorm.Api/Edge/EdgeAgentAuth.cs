using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Errors;
using Sandstorm.Storage.Edge;

namespace Sandstorm.Api.Edge;

/// <summary>Authenticates an edge agent by its <c>Authorization: Bearer &lt;agent token&gt;</c>.</summary>
public static class EdgeAgentAuth
{
    /// <summary>
    /// The tenant of the agent whose token the request carries; 401 for a missing or unknown token, 403 when the token
    /// belongs to a different agent than the one in the route.
    /// </summary>
    public static async Task<string> RequireAgentAsync(HttpContext http, string agentId)
    {
        var token = TenantAuth.BearerToken(http.Request);
        if (token is null)
        {
            http.Response.Headers.WWWAuthenticate = "Bearer";
            throw new SandstormException(ErrorCodes.Unauthorized, "an agent token is required: Authorization: Bearer <agent token>", StatusCodes.Status401Unauthorized);
        }

        var agents = http.RequestServices.GetRequiredService<EdgeAgentStore>();
        var owner = await agents.ResolveTokenAsync(token, http.RequestAborted);
        if (owner is null)
        {
            http.Response.Headers.WWWAuthenticate = "Bearer";
            throw new SandstormException(ErrorCodes.Unauthorized, "the agent token is not valid", StatusCodes.Status401Unauthorized);
        }

        return owner.Value.AgentId == agentId
            ? owner.Value.TenantId
            : throw new SandstormException(ErrorCodes.Forbidden, $"the agent token does not belong to agent '{agentId}'", StatusCodes.Status403Forbidden);
    }
}
