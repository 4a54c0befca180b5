using System.Text;
using Azure.Storage.Queues;
using Azure.Storage.Queues.Models;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Sandstorm.Api;
using Sandstorm.Api.Batches;
using Sandstorm.Core.Contracts;
using Sandstorm.Orchestrations;
using Sandstorm.Orchestrations.Batches;
using Sandstorm.Providers;
using Sandstorm.Providers.Local;
using Sandstorm.Storage;
using Sandstorm.Testing;

namespace Sandstorm.Batch.Tests;

/// <summary>
/// The batch pipeline on the in-memory durable engine with its state, queue and poison queue in real Azurite
/// (fresh table prefix and queue per host). The queue listener is pumped by the test, so each test decides when
/// messages are taken.
/// </summary>
public sealed class BatchHost : IAsyncDisposable
{
    private readonly DurableTaskTestHost _host;

    private BatchHost(DurableTaskTestHost host, StorageBatchQueueListener listener)
    {
        _host = host;
        Listener = listener;
    }

    public DurableTaskClient Client => _host.Client;

    public IServiceProvider Services => _host.Services;

    public StorageBatchQueueListener Listener { get; }

    public BatchService Batches => Services.GetRequiredService<BatchService>();

    public QueueClient Queue => Services.GetRequiredService<QueueServiceClient>().GetQueueClient(Services.GetRequiredService<IOptions<StorageOptions>>().Value.BatchQueue);

    public QueueClient PoisonQueue => Services.GetRequiredService<QueueServiceClient>().GetQueueClient(QueuePoison.PoisonQueueName(Queue.Name));

    public static async Task<BatchHost> StartAsync(AzuriteFixture azurite, int concurrency = 8, int chunkSize = 50)
    {
        var prefix = "t" + Guid.NewGuid().ToString("N")[..10];
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Storage"] = azurite.ConnectionString,
            ["Sandstorm:Storage:Prefix"] = prefix,
            ["Sandstorm:Storage:BatchQueue"] = prefix + "-batches",
            ["Sandstorm:Runs:Overhead"] = "00:00:10",
            ["Sandstorm:Local:AllowUnisolated"] = "true",
            ["Sandstorm:Local:WarmGvisorSandboxes"] = "0",
            ["Sandstorm:Batches:MaxConcurrentRunsPerTenant"] = concurrency.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Sandstorm:Batches:ChunkSize"] = chunkSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }).Build();
        var host = await DurableTaskTestHost.StartAsync(
            SandstormTasks.Register,
            new DurableTaskTestHostOptions
            {
                // A free port, not the host's random pick in 30000-40000, which can collide with Azurite or another host.
                Port = Sandstorm.Storage.AzuriteProcess.FreePort(),
                ConfigureServices = services =>
                {
                    services.AddSingleton<IConfiguration>(configuration);
                    services.AddLogging();
                    services.AddSandstormStorage(configuration);
                    services.AddSandstormLocalExecution(configuration);
                    // Provenance (signing, transparency log) has its own tests and runs in the real-host test here;
                    // in-process it would only add a signing key per host.
                    services.AddSingleton<IRunRecorder, NoProvenance>();
                    services.AddSandstormOrchestrations();
                    services.AddSandstormApi();
                    services.AddSandstormBatches(configuration, HostProfile.AzureFunctions);
                },
            });
        var listener = ActivatorUtilities.CreateInstance<StorageBatchQueueListener>(host.Services, host.Client);
        // The test tenants run trusted test code as plain processes, so they opt in to isolation none.
        foreach (var tenant in new[] { "tenant-a", "tenant-b" })
        {
            await host.Services.GetRequiredService<TenantStore>().SetAsync(tenant, new TenantSettings { AllowUnisolated = true }, CancellationToken.None);
        }

        return new BatchHost(host, listener);
    }

    /// <summary>Requests that print their index (and, with <paramref name="log"/>, append it to a file to count executions).</summary>
    public static List<RunRequest> PrintRequests(int count, string? log = null, double sleepSeconds = 0) =>
        [.. Enumerable.Range(0, count).Select(i => new RunRequest
        {
            Language = "python",
            IsolationLevel = IsolationLevel.None,
            Timeout = 30_000,
            Code = (sleepSeconds > 0 ? $"import time; time.sleep({sleepSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)})\n" : "")
                + (log is null ? "" : $"open({System.Text.Json.JsonSerializer.Serialize(log)}, 'a').write('{i}\\n')\n")
                + $"print({i})",
        })];

    public Task<(string BatchId, bool Created)> SubmitAsync(string tenant, IEnumerable<RunRequest> requests, string? key = null) =>
        Batches.SubmitAsync(tenant, BatchManifest.ToJsonLines(requests), jsonLines: true, key, CancellationToken.None);

    /// <summary>Polls the queue until it is empty (every message handled or poisoned).</summary>
    public async Task DrainQueueAsync()
    {
        await Poll.UntilAsync(
            async () =>
            {
                await Listener.PollOnceAsync(CancellationToken.None);
                QueueProperties properties = await Queue.GetPropertiesAsync();
                return properties.ApproximateMessagesCount;
            },
            count => count == 0,
            TimeSpan.FromSeconds(30),
            "the batch queue to drain");
    }

    public Task<BatchView> WaitForBatchAsync(string tenant, string batchId, TimeSpan timeout, Action<BatchView>? observe = null) =>
        Poll.UntilAsync(
            async () =>
            {
                var view = (await Batches.GetAsync(Client, tenant, batchId, CancellationToken.None))!;
                observe?.Invoke(view);
                return view;
            },
            v => v.Status is BatchStatus.Completed or BatchStatus.Cancelled,
            timeout,
            $"batch {batchId} to finish");

    public async Task<List<BatchResultLine>> ResultsAsync(string tenant, string batchId)
    {
        var lines = new List<BatchResultLine>();
        await foreach (var stream in (await Batches.OpenResultsAsync(tenant, batchId, CancellationToken.None))!)
        {
            using var reader = new StreamReader(stream, Encoding.UTF8);
            while (await reader.ReadLineAsync() is { } line)
            {
                lines.Add(System.Text.Json.JsonSerializer.Deserialize<BatchResultLine>(line, Core.SandstormJson.Options)!);
            }
        }

        return lines;
    }

    public async Task<List<QueuePoison.PoisonEnvelope>> PoisonAsync()
    {
        if (!await PoisonQueue.ExistsAsync())
        {
            return [];
        }

        QueueMessage[] messages = await PoisonQueue.ReceiveMessagesAsync(32);
        return [.. messages.Select(m => System.Text.Json.JsonSerializer.Deserialize<QueuePoison.PoisonEnvelope>(m.Body.ToString(), Core.SandstormJson.Options)!)];
    }

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    private sealed class NoProvenance : IRunRecorder
    {
        public Task<ProvenanceRef?> RecordAsync(SettleInput settle, RunResult result, CancellationToken cancellationToken) =>
            Task.FromResult<ProvenanceRef?>(null);
    }
}
