using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Sandstorm.Api;

/// <summary>
/// Which host runs the control plane. Everything that differs between hosts follows from it in one place,
/// <see cref="ControlPlaneComposition.AddSandstormControlPlane"/>; a host's start-up only says which profile it is.
/// </summary>
public sealed record HostProfile
{
    /// <summary>Stable name (<c>azure-functions</c>, <c>local</c>, <c>test</c>).</summary>
    public required string Name { get; init; }

    /// <summary>
    /// Registers execution of tenant code on the host's own machine (the <c>local</c> provider and its runtimes), or null:
    /// the host never runs tenant code. The Functions app has none — it does not even reference the runtimes.
    /// </summary>
    public Action<IServiceCollection, IConfiguration>? LocalExecution { get; init; }

    /// <summary>
    /// True when the host is one long-lived process that runs its own loops: the batch queue listener, the edge sweeper,
    /// the sandbox reaper and the scheduled re-optimisation. False where the platform's triggers call the same code
    /// (Functions: the queue trigger, timer triggers).
    /// </summary>
    public bool RunsLoops { get; init; }

    /// <summary>
    /// True when the host routes ASP.NET Core endpoints itself (Kestrel and <see cref="ApiRoutes.MapSandstormApi"/>): it then
    /// also serves what is built on endpoint routing, the MCP server (<c>/mcp</c>) and the OpenAPI document
    /// (<c>/openapi/v1.json</c>, <c>/docs</c>). False on Functions, whose worker routes HTTP triggers: there those paths
    /// answer 501 (<see cref="RouteProblems.NotOnFunctions"/>).
    /// </summary>
    public bool RoutesEndpoints { get; init; }

    /// <summary>The Azure Functions app: no local execution; queue and timer triggers drive the background work.</summary>
    public static HostProfile AzureFunctions { get; } = new() { Name = "azure-functions" };

    /// <summary>The one-machine host: runs tenant code itself (through <paramref name="localExecution"/>) and its own loops.</summary>
    public static HostProfile Local(Action<IServiceCollection, IConfiguration> localExecution) =>
        new() { Name = "local", LocalExecution = localExecution, RunsLoops = true, RoutesEndpoints = true };
}
