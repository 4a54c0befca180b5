using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Sandstorm.Runtimes;
using Sandstorm.Runtimes.Shield;

namespace Sandstorm.Providers.Local;

/// <summary>Registers execution on this machine: the runtimes and the <c>local</c> provider over them.</summary>
public static class LocalExecutionServiceCollectionExtensions
{
    /// <summary>
    /// The runtimes (configured from <c>Sandstorm:Local</c>), the <see cref="LocalProvider"/> as an <see cref="ISandboxProvider"/>,
    /// and a start-up service that probes every runtime and boots the warm gVisor sandboxes, so the first run does not pay for it.
    /// </summary>
    public static IServiceCollection AddSandstormLocalExecution(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<LocalExecutionOptions>()
            .Bind(configuration.GetSection(LocalExecutionOptions.Section))
            .Validate(o => o.WarmGvisorSandboxes is >= 0 and <= 16, "Sandstorm:Local:WarmGvisorSandboxes must be 0 to 16")
            .ValidateOnStart();
        services.TryAddSingleton(sp =>
        {
            var local = sp.GetRequiredService<IOptions<LocalExecutionOptions>>().Value;
            var options = new RuntimeOptions
            {
                TimeProvider = sp.GetService<TimeProvider>() ?? TimeProvider.System,
                CgroupParent = local.CgroupParent,
                WarmGvisorSandboxes = local.WarmGvisorSandboxes,
            };
            options = local.WorkRoot is { Length: > 0 } root ? options with { WorkRoot = root } : options;

            // One monitor for the process, attached in the background by LocalRuntimeWarmup: a Shield run that comes
            // before it has attached waits for it (see SandboxRuntimeBase), and the runtimes' offers wait to say coverage.
            return local.Shield ? options with { Shield = ShieldMonitor.Create(ShieldMonitorOptions.For(options)) } : options;
        });
        services.TryAddSingleton<IReadOnlyList<ISandboxRuntime>>(sp =>
        {
            var all = RuntimeRegistry.CreateAll(sp.GetRequiredService<RuntimeOptions>());
            return sp.GetRequiredService<IOptions<LocalExecutionOptions>>().Value.MicroVm ? all : [.. all.Where(r => r is not MicroVmRuntime)];
        });
        services.AddSandstormRuntimes();
        services.TryAddSingleton<LocalProvider>();
        services.AddSingleton<ISandboxProvider>(sp => sp.GetRequiredService<LocalProvider>());
        services.AddSingleton<ISandboxKeeper>(sp => sp.GetRequiredService<LocalProvider>());
        services.AddSingleton<IShieldAlertTarget>(sp => sp.GetRequiredService<LocalProvider>());
        services.TryAddSingleton<IProviderCatalog, ProviderCatalog>();
        services.AddHostedService<LocalRuntimeWarmup>();
        return services;
    }

    /// <summary>Probes the runtimes in the background at start and keeps gVisor's warm pool; disposes the pool at stop.</summary>
    private sealed class LocalRuntimeWarmup(LocalProvider provider, IReadOnlyList<ISandboxRuntime> runtimes, RuntimeOptions options) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            _ = Task.Run(async () =>
            {
                // First the monitor: a warm gVisor sandbox reports to it only if it is listening when the sandbox boots.
                if (options.Shield is { } shield)
                {
                    await shield.StartAsync(CancellationToken.None);
                }

                var working = await provider.GetCapabilitiesAsync("", CancellationToken.None);
                if (working?.Runtimes.Any(r => r.Name == GvisorRuntime.RuntimeName) == true)
                {
                    runtimes.OfType<GvisorRuntime>().Single().StartWarming();
                }

                provider.StartPools(working?.Runtimes.Select(r => r.Name) ?? []);
            }, CancellationToken.None);
            return Task.CompletedTask;
        }

        public async Task StopAsync(CancellationToken cancellationToken)
        {
            await provider.DisposeAsync();
            foreach (var runtime in runtimes.OfType<IAsyncDisposable>())
            {
                await runtime.DisposeAsync();
            }

            if (options.Shield is { } shield)
            {
                await shield.DisposeAsync();
            }
        }
    }
}
