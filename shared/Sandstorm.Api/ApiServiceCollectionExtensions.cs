using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Sandstorm.Api;

/// <summary>Registers the services behind the HTTP API.</summary>
public static class ApiServiceCollectionExtensions
{
    public static IServiceCollection AddSandstormApi(this IServiceCollection services)
    {
        services.TryAddSingleton<RunService>();
        return services;
    }
}
