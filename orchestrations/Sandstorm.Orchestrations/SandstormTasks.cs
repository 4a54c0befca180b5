using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Sandstorm.Orchestrations.Activities;
using Sandstorm.Orchestrations.Batches;
using Sandstorm.Orchestrations.Sandboxes;
using Sandstorm.Routing;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Reoptimization;

namespace Sandstorm.Orchestrations;

/// <summary>The one registry of Sandstorm's orchestrators and activities, used by the local host and the tests.</summary>
public static class SandstormTasks
{
    /// <summary>Orchestrator and activity names, as the Functions shims must also spell them.</summary>
    public static IReadOnlyList<string> Orchestrators { get; } = [nameof(SandboxRunOrchestrator), nameof(BatchOrchestrator), nameof(SandboxLifecycleOrchestrator)];

    public static IReadOnlyList<string> Activities { get; } =
        [nameof(RouteActivity), nameof(ProvisionActivity), nameof(ExecuteActivity), nameof(MonitorActivity), nameof(SettleActivity),
         nameof(JoinBatchLaneActivity), nameof(PrepareBatchChunkActivity), nameof(WriteBatchResultsActivity), nameof(FinishBatchActivity),
         nameof(LeaveBatchLaneActivity), nameof(EndSandboxActivity)];

    public static void Register(DurableTaskRegistry registry)
    {
        SandboxRunOrchestrator.Register(registry);
        registry.AddActivity<RouteActivity>();
        registry.AddActivity<ProvisionActivity>();
        registry.AddActivity<ExecuteActivity>();
        registry.AddActivity<MonitorActivity>();
        registry.AddActivity<SettleActivity>();
        BatchOrchestrator.Register(registry);
        registry.AddActivity<JoinBatchLaneActivity>();
        registry.AddActivity<PrepareBatchChunkActivity>();
        registry.AddActivity<WriteBatchResultsActivity>();
        registry.AddActivity<FinishBatchActivity>();
        registry.AddActivity<LeaveBatchLaneActivity>();
        SandboxLifecycleOrchestrator.Register(registry);
        registry.AddActivity<EndSandboxActivity>();
    }

    /// <summary>Services the activities need (stores, providers and router are registered by their own extensions).</summary>
    public static IServiceCollection AddSandstormOrchestrations(this IServiceCollection services)
    {
        services.AddOptions<RunPipelineOptions>().BindConfiguration(RunPipelineOptions.Section);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<RunPayloads>();
        services.TryAddSingleton<RunCompletionNotifier>();
        services.TryAddSingleton<IFaultInjector, NoFaults>();
        services.TryAddSingleton<IRunJournal, NoRunJournal>();
        services.TryAddSingleton<IRunRouter, RuleBasedRouter>();
        services.TryAddSingleton<RoutingMarketState>();
        services.TryAddSingleton<RoutingInputs>();
        services.TryAddSingleton<IRoutingObservationSource, LedgerObservationSource>();
        services.AddSandstormRoutingFeedback();
        services.TryAddSingleton<IRunRecorder, ProvenanceRecorder>();
        services.TryAddTransient<RouteActivity>();
        services.TryAddTransient<ProvisionActivity>();
        services.TryAddTransient<ExecuteActivity>();
        services.TryAddTransient<MonitorActivity>();
        services.TryAddTransient<SettleActivity>();
        services.AddOptions<BatchOptions>().BindConfiguration(BatchOptions.Section);
        services.TryAddTransient<PrepareBatchChunkActivity>();
        services.TryAddTransient<WriteBatchResultsActivity>();
        services.TryAddTransient<FinishBatchActivity>();
        services.TryAddTransient<JoinBatchLaneActivity>();
        services.TryAddTransient<LeaveBatchLaneActivity>();
        services.TryAddTransient<EndSandboxActivity>();
        services.TryAddSingleton<ISandboxEndListener, NoSandboxEndListener>();
        return services;
    }

    /// <summary>
    /// What Settle gives back to routing (<see cref="SettleRouting"/>: fees against Autopilot's baseline, carbon, the outcome to
    /// <see cref="IRoutingLearner"/>) and the providers' view the re-optimisation reads (<see cref="ProviderCatalogMarketSource"/>).
    /// The learner is the router when routing is registered; otherwise one that learns nothing (the rule-based router).
    /// </summary>
    public static IServiceCollection AddSandstormRoutingFeedback(this IServiceCollection services)
    {
        services.TryAddSingleton<RoutingMarketState>();
        services.TryAddSingleton<IRoutingLearner>(NoLearning.Instance);
        services.TryAddSingleton<SettleRouting>();
        services.TryAddSingleton<IRoutingMarketSource, ProviderCatalogMarketSource>();
        services.AddHostedService(sp => new ProviderHealthSampler(
            sp.GetService<Providers.IProviderCatalog>(), sp.GetRequiredService<TimeProvider>(), sp.GetService<Telemetry.ITelemetrySink>()));
        return services;
    }

    private sealed class NoLearning : IRoutingLearner
    {
        public static NoLearning Instance { get; } = new();

        public void Observe(RoutingObservation observation)
        {
        }
    }
}
