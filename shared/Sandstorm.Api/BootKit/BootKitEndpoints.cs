using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Edge;
using Sandstorm.Storage.Edge;

namespace Sandstorm.Api.BootKit;

/// <summary>BootKit's side of the API: which bootable images a tenant's edge agents run.</summary>
public static class BootKitEndpoints
{
    /// <summary>
    /// <c>GET /v1/bootkit/images</c> (API key): the images the tenant's agents report having booted from (by name and
    /// digest), each with the agents running it and whether each is live. Only the tenant's own agents are seen.
    /// </summary>
    public static Task<IResult> ListImagesAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var options = http.RequestServices.GetRequiredService<IOptions<EdgeOptions>>().Value;
        var now = http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        var agents = await http.RequestServices.GetRequiredService<EdgeAgentStore>().ListAsync(tenant, http.RequestAborted);
        var images = agents
            .Where(a => a.Heartbeat?.BootcImage is not null)
            .GroupBy(a => a.Heartbeat!.BootcImage!)
            .OrderBy(g => g.Key.Name, StringComparer.Ordinal)
            .ThenBy(g => g.Key.Digest, StringComparer.Ordinal)
            .Select(g => new BootKitImage(
                g.Key.Name,
                g.Key.Digest,
                $"{g.Key.Name}@{g.Key.Digest}",
                [.. g.OrderBy(a => a.AgentId, StringComparer.Ordinal)
                    .Select(a => new BootKitImageAgent(a.AgentId, a.Name, a.Region, a.IsLive(now, options.AgentTimeout), a.LastHeartbeat))]))
            .ToList();
        return RunEndpoints.Json(new BootKitImageList(images), StatusCodes.Status200OK);
    });
}
