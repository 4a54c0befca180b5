using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Sandstorm.Api;

/// <summary>Registers the services behind the HTTP API.</summary>
public static class ApiServiceCollectionExtensions
{
    public static IServiceCollection AddSandstormApi(this IServiceCollection services)
    {
        services.TryAddSingleton<TenantRateLimiter>();
        services.TryAddSingleton<RunService>();
        services.TryAddSingleton<Sandboxes.SandboxService>();
        services.TryAddSingleton<Sandboxes.SandboxReaper>();
        // The API's live sandboxes hear of every end (after the orchestrations' no-op default).
        services.AddSingleton<Orchestrations.Sandboxes.ISandboxEndListener>(sp => sp.GetRequiredService<Sandboxes.SandboxService>());
        return services;
    }
}
