using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Errors;

namespace Sandstorm.Api.Mcp;

/// <summary>
/// Sandstorm as an MCP server (streamable HTTP) at <see cref="Route"/>: the tools of <see cref="SandstormTools"/>, for the
/// tenant of <c>Authorization: Bearer &lt;api key&gt;</c>, resolved exactly as the REST API resolves it.
/// </summary>
public static class McpEndpoints
{
    /// <summary>Where the MCP endpoint lives on every host.</summary>
    public const string Route = "/mcp";

    /// <summary>Key of the calling tenant in <see cref="HttpContext.Items"/>, set before any MCP message is handled.</summary>
    public const string TenantItem = "sandstorm.mcp.tenant";

    /// <summary>Registers the MCP server: stateless streamable HTTP (any instance answers any request, no session affinity).</summary>
    public static IServiceCollection AddSandstormMcp(this IServiceCollection services)
    {
        services.AddHttpContextAccessor();
        services.AddMcpServer(options =>
            {
                options.ServerInfo = new() { Name = "sandstorm", Version = "1.0.0" };
                options.ServerInstructions =
                    "Sandstorm runs code in sandboxes placed by intent (isolation, strategy, max cost). run_code runs one program and "
                    + "waits for its result; create_sandbox keeps a sandbox for several commands and files (kill_sandbox when done).";
            })
            .WithHttpTransport(options => options.Stateless = true)
            .WithTools<SandstormTools>();
        return services;
    }

    /// <summary>Maps <see cref="Route"/>; every request must carry a tenant's API key (401 problem+json otherwise).</summary>
    public static IEndpointConventionBuilder MapSandstormMcp(this IEndpointRouteBuilder app)
    {
        var builder = app.MapMcp(Route);
        builder.Add(endpoint =>
        {
            var inner = endpoint.RequestDelegate ?? throw new InvalidOperationException($"MCP endpoint {endpoint.DisplayName} has no handler");
            endpoint.RequestDelegate = http => AuthenticatedAsync(http, inner);
        });
        return builder;
    }

    /// <summary>Resolves the tenant (as <see cref="TenantAuth"/> does for REST) and hands the request to the MCP transport.</summary>
    public static async Task AuthenticatedAsync(HttpContext http, RequestDelegate mcp)
    {
        string tenant;
        try
        {
            tenant = await TenantAuth.RequireTenantAsync(http);
        }
        catch (SandstormException e)
        {
            await Problems.From(e).ExecuteAsync(http);
            return;
        }

        http.Items[TenantItem] = tenant;
        await mcp(http);
    }
}
