using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Sandstorm.Runtimes;

/// <summary>DI registration of the sandbox runtimes.</summary>
public static class RuntimeServiceCollectionExtensions
{
    /// <summary>
    /// Registers <see cref="RuntimeOptions"/> (unless already registered), every runtime as <see cref="ISandboxRuntime"/>,
    /// <see cref="ProcessRuntime"/> by its own type, and a <see cref="RuntimeSelector"/>; all singletons.
    /// </summary>
    public static IServiceCollection AddSandstormRuntimes(this IServiceCollection services, Func<RuntimeOptions, RuntimeOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(sp =>
        {
            var options = new RuntimeOptions { TimeProvider = sp.GetService<TimeProvider>() ?? TimeProvider.System };
            return configure is null ? options : configure(options);
        });
        services.TryAddSingleton<IReadOnlyList<ISandboxRuntime>>(sp => RuntimeRegistry.CreateAll(sp.GetRequiredService<RuntimeOptions>()));
        services.TryAddSingleton(sp => sp.GetRequiredService<IReadOnlyList<ISandboxRuntime>>().OfType<ProcessRuntime>().First());
        services.TryAddSingleton(sp => new RuntimeSelector(sp.GetRequiredService<IReadOnlyList<ISandboxRuntime>>()));
        return services;
    }
}
