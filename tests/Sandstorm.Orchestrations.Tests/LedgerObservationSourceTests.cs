using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers;
using Sandstorm.Routing;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Storage;
using Sandstorm.Providers.Local;
using Sandstorm.Storage;
using Sandstorm.Testing;
using RoutingMarketState = Sandstorm.Routing.Reoptimization.RoutingMarketState;

namespace Sandstorm.Orchestrations.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class LedgerObservationSourceTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

    /// <summary>Registers services the way both hosts do: storage, providers, routing before the orchestrations.</summary>
    private ServiceProvider HostServices()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Storage"] = azurite.ConnectionString,
            ["Sandstorm:Storage:Prefix"] = "t" + Guid.NewGuid().ToString("N")[..10],
            ["Routing:ModelContainer"] = "models-" + Guid.NewGuid().ToString("N")[..10],
        }).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging();
        services.AddSandstormStorage(configuration);
        services.AddSandstormLocalExecution(configuration);
        services.AddSandstormRouting(configuration);
        services.AddSandstormOrchestrations();
        return services.BuildServiceProvider();
    }

    private static LedgerEntry Entry(string runId, RunStatus status, DateTimeOffset settled, string provider = "local") => new()
    {
        TenantId = "tenant-a",
        RunId = runId,
        Provider = provider,
        Runtime = "bwrap",
        Region = "local",
        Status = status,
        ProviderCost = 0.00012m,
        Total = 0.00015m,
        LatencyMs = 2_000,
        SettledAt = settled,
        Language = Languages.Python,
        CodeLength = 640,
        Cpu = 1,
        MemoryMiB = 512,
        TimeoutMs = 30_000,
        IsolationLevel = IsolationLevel.Standard,
        Strategy = RoutingStrategy.OptimizeCost,
    };

    [Fact]
    public async Task GetObservationsAsync_SettledRunsInWindow_MapsFeaturesAndOutcome()
    {
        await using var sp = HostServices();
        var ledger = sp.GetRequiredService<LedgerStore>();
        sp.GetRequiredService<RoutingMarketState>().Update(
            new Dictionary<string, PriceSheet> { ["local"] = new() { VcpuSecond = 0.00001, GibSecond = 0.000002, GranularitySeconds = 1 } }, null, Now);
        await ledger.AddOnceAsync(Entry("r-old", RunStatus.Succeeded, Now.AddDays(-20)), CancellationToken.None);
        await ledger.AddOnceAsync(Entry("r-ok", RunStatus.Succeeded, Now.AddMinutes(-10)), CancellationToken.None);
        await ledger.AddOnceAsync(Entry("r-failed", RunStatus.TimedOut, Now.AddMinutes(-5)), CancellationToken.None);
        await ledger.AddOnceAsync(Entry("r-cancelled", RunStatus.Cancelled, Now.AddMinutes(-4)), CancellationToken.None);
        await ledger.AddOnceAsync(Entry("r-future", RunStatus.Succeeded, Now.AddMinutes(5)), CancellationToken.None);

        var source = Assert.IsType<LedgerObservationSource>(sp.GetRequiredService<IRoutingObservationSource>());
        var observations = await source.GetObservationsAsync(Now.AddDays(-14), Now, CancellationToken.None);

        Assert.Equal(["r-ok", "r-failed"], observations.Select(o => o.RunId));
        var ok = observations[0];
        Assert.True(ok.Ok);
        Assert.False(observations[1].Ok);
        Assert.Equal(new RouteCandidate("local", "bwrap", "local"), ok.Route);
        Assert.Equal(Now.AddMinutes(-10).AddSeconds(-2), ok.Time);
        Assert.Equal(0.00012, ok.CostUsd, 10);
        Assert.Equal(2_000, ok.LatencyMs);
        Assert.Equal(0.00001, ok.Price.VcpuSecond);
        Assert.Equal(Languages.Python, ok.Workload.Language);
        Assert.Equal(640, ok.Workload.CodeLength);
        Assert.Equal(RoutingStrategy.OptimizeCost, ok.Workload.Strategy);
        Assert.Equal(30_000, ok.Workload.TimeoutMs);
    }

    [Fact]
    public async Task HostRegistration_RoutingBeforeOrchestrations_ResolvesLightGbmRouterAndBlobModelStore()
    {
        await using var sp = HostServices();

        Assert.IsType<LightGbmRouter>(sp.GetRequiredService<IRunRouter>());
        var store = Assert.IsType<AzureBlobModelStore>(sp.GetRequiredService<IModelStore>());
        Assert.Null(await store.GetLatestReportAsync(CancellationToken.None));
        Assert.NotNull(sp.GetRequiredService<Routing.Reoptimization.ReoptimizationJob>());
    }
}
