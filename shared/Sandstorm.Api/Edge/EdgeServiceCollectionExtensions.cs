using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Sandstorm.Providers;
using Sandstorm.Providers.Edge;
using Sandstorm.Storage.Edge;

namespace Sandstorm.Api.Edge;

/// <summary>Registers edge agents: their stores, the <c>edge</c> provider, result completion and the sweeper.</summary>
public static class EdgeServiceCollectionExtensions
{
    /// <summary>Everything both hosts need; call after <c>AddSandstormStorage</c>. Options from <c>Sandstorm:Edge</c>.</summary>
    public static IServiceCollection AddSandstormEdge(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<EdgeOptions>()
            .Bind(configuration.GetSection(EdgeOptions.Section))
            .Validate(o => o.AgentTimeout > TimeSpan.Zero && o.LeaseTimeout > TimeSpan.Zero && o.SweepInterval > TimeSpan.Zero && o.PollInterval > TimeSpan.Zero, "edge intervals must be positive")
            .Validate(o => o.MaxAttempts >= 1, "Sandstorm:Edge:MaxAttempts must be at least 1")
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<EdgeEnrollmentTokenStore>();
        services.TryAddSingleton<EdgeAgentStore>();
        services.TryAddSingleton<EdgeJobStore>();
        services.TryAddSingleton<EdgeTelemetryStore>();
        services.TryAddSingleton<EdgeQuarantineStore>();
        services.TryAddSingleton<EdgeJobSignal>();
        services.TryAddSingleton<EdgeProvider>();
        services.AddSingleton<ISandboxProvider>(sp => sp.GetRequiredService<EdgeProvider>());
        services.AddSingleton<IShieldAlertTarget>(sp => sp.GetRequiredService<EdgeProvider>());
        services.TryAddSingleton<IProviderCatalog, ProviderCatalog>();
        services.TryAddSingleton<EdgeJobCompletion>();
        services.TryAddSingleton<EdgeSweeper>();
        services.TryAddSingleton<EdgeJobLeases>();
        return services;
    }

    /// <summary>Runs the sweeper in-process every <see cref="EdgeOptions.SweepInterval"/> (the local host; Azure uses a timer function).</summary>
    public static IServiceCollection AddSandstormEdgeSweeper(this IServiceCollection services)
    {
        services.AddHostedService<EdgeSweeperService>();
        return services;
    }
}
