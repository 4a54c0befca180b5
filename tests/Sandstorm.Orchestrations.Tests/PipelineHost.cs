using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers;
using Sandstorm.Providers.Local;
using Sandstorm.Security;
using Sandstorm.Storage;
using Sandstorm.Testing;

namespace Sandstorm.Orchestrations.Tests;

/// <summary>The run pipeline on the in-memory durable engine, with its state in real Azurite (a fresh table prefix per host).</summary>
public sealed class PipelineHost : IAsyncDisposable
{
    private readonly DurableTaskTestHost _host;

    private PipelineHost(DurableTaskTestHost host) => _host = host;

    public DurableTaskClient Client => _host.Client;

    public IServiceProvider Services => _host.Services;

    /// <summary>
    /// Starts a host; <paramref name="register"/> adds tasks beside Sandstorm's own (a test's wrapper orchestrator);
    /// <paramref name="overhead"/> is the time a run gets beyond its timeout before the orchestration's deadline (5 s).
    /// </summary>
    public static async Task<PipelineHost> StartAsync(AzuriteFixture azurite, Action<IServiceCollection>? configure = null, Action<DurableTaskRegistry>? register = null, TimeSpan? overhead = null)
    {
        var prefix = "t" + Guid.NewGuid().ToString("N")[..10];
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Storage"] = azurite.ConnectionString,
            ["Sandstorm:Storage:Prefix"] = prefix,
            ["Sandstorm:Runs:Overhead"] = (overhead ?? TimeSpan.FromSeconds(5)).ToString("c", System.Globalization.CultureInfo.InvariantCulture),
            ["Sandstorm:Signing:KeyPath"] = Path.Combine(Path.GetTempPath(), "sandstorm-tests", prefix + ".pem"),
            ["Sandstorm:Log:Name"] = prefix,
            ["Sandstorm:Local:AllowUnisolated"] = "true",
            ["Sandstorm:Local:CgroupParent"] = "sandstorm/orchestration-tests",
            ["Sandstorm:Local:WarmGvisorSandboxes"] = "0",
        }).Build();
        var host = await DurableTaskTestHost.StartAsync(
            registry =>
            {
                SandstormTasks.Register(registry);
                register?.Invoke(registry);
            },
            new DurableTaskTestHostOptions
            {
                // A free port, not the host's random pick in 30000-40000, which can collide with Azurite or another host.
                Port = Sandstorm.Storage.AzuriteProcess.FreePort(),
                ConfigureServices = services =>
                {
                    services.AddSingleton<IConfiguration>(configuration);
                    services.AddSandstormStorage(configuration);
                    services.AddSandstormSecurity(configuration);
                    services.AddSandstormLocalExecution(configuration);
                    configure?.Invoke(services);
                    services.AddSandstormOrchestrations();
                },
            });
        return new PipelineHost(host);
    }

    /// <summary>
    /// Starts a run the way the API does and returns its input; <paramref name="traceParent"/> is what the API would have
    /// stored from the submission, <paramref name="orchestrator"/> another name to start it under (a test's wrapper).
    /// </summary>
    public async Task<RunInput> StartRunAsync(RunRequest request, string tenant = "tenant-a", string? traceParent = null, string orchestrator = nameof(SandboxRunOrchestrator))
    {
        var runId = "run_" + Guid.NewGuid().ToString("N")[..16];
        var payloads = Services.GetRequiredService<RunPayloads>();
        var input = new RunInput
        {
            RunId = runId,
            TenantId = tenant,
            Intent = RunIntent.Of(request),
            Request = await payloads.PutRequestAsync(tenant, runId, request, CancellationToken.None),
            DeadlineMs = request.Timeout + 5_000,
            SubmittedAt = DateTimeOffset.UtcNow,
            TraceParent = traceParent,
        };
        await Client.ScheduleNewOrchestrationInstanceAsync(orchestrator, input, new Microsoft.DurableTask.StartOrchestrationOptions(runId));
        return input;
    }

    public async Task<RunOutcome> CompleteAsync(RunInput input, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        var state = await Client.WaitForInstanceCompletionAsync(input.RunId, getInputsAndOutputs: true, cts.Token);
        Assert.True(
            state.RuntimeStatus == OrchestrationRuntimeStatus.Completed,
            $"orchestration {state.RuntimeStatus}: {state.FailureDetails?.ErrorType} {state.FailureDetails?.ErrorMessage}");
        return state.ReadOutputAs<RunOutcome>()!;
    }

    public Task<RunRecord?> RecordAsync(RunInput input) =>
        Services.GetRequiredService<RunStore>().GetAsync(input.TenantId, input.RunId, CancellationToken.None);

    public Task<LedgerEntry?> LedgerAsync(RunInput input) =>
        Services.GetRequiredService<LedgerStore>().GetAsync(input.TenantId, input.RunId, CancellationToken.None);

    public ValueTask DisposeAsync() => _host.DisposeAsync();
}
