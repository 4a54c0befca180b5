using System.Net;
using System.Net.Sockets;
using DurableTask.AzureStorage;
using DurableTask.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing.Sidecar;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.DurableTask.Testing.Sidecar.Grpc;
using Microsoft.DurableTask.Worker;
using Sandstorm.Orchestrations;

namespace Sandstorm.Local;

/// <summary>
/// The local durable engine: the Durable Task gRPC sidecar (<see cref="TaskHubGrpcServer"/>) served by this host on a
/// loopback HTTP/2 port, over the DTFx Azure Storage provider (Azurite) — or the in-memory engine for speed.
/// </summary>
public static class DurableEngine
{
    /// <summary>Work items each sidecar dispatcher runs at once (the in-memory service's own default is one per core).</summary>
    public const int MaxConcurrentWorkItems = 64;

    // Kestrel owns the descriptor once it listens on it (and closes it when it stops); this reference only keeps the
    // socket object from being finalized, which would close the descriptor under Kestrel. One engine per process.
    private static Socket? grpcSocket;

    public static WebApplicationBuilder AddSandstormDurable(this WebApplicationBuilder builder, LocalOptions options, string storageConnectionString)
    {
        var service = options.Durable == "in-memory" ? CreateInMemory() : CreateAzureStorage(options, storageConnectionString);
        // The sidecar's socket is bound and listening from here on, and Kestrel takes it over when it starts: no other
        // process can take the port in between, and a client call made before Kestrel accepts on it (the API's port
        // may be served first) waits in the backlog instead of being refused.
        grpcSocket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        grpcSocket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        grpcSocket.Listen(512);
        var grpcPort = ((IPEndPoint)grpcSocket.LocalEndPoint!).Port;
        builder.WebHost.ConfigureKestrel(kestrel =>
            kestrel.ListenHandle((ulong)grpcSocket.Handle, listen => listen.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(SidecarOrchestrationService.Wrap((IOrchestrationService)service, MaxConcurrentWorkItems));
        builder.Services.AddSingleton((IOrchestrationServiceClient)service);
        builder.Services.AddSingleton<TaskHubGrpcServer>();
        builder.Services.AddHostedService(sp => new TaskHubBootstrap((IOrchestrationService)service));

        var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{grpcPort}");
        builder.Services.AddDurableTaskClient(b => b.UseGrpc(channel));
        builder.Services.AddDurableTaskWorker(b =>
        {
            b.AddTasks(SandstormTasks.Register);
            b.UseGrpc(channel);
        });
        return builder;
    }

    public static WebApplication MapSandstormDurable(this WebApplication app)
    {
        app.MapGrpcService<TaskHubGrpcServer>();
        return app;
    }

    private static object CreateInMemory() => new InMemoryOrchestrationService(NullLoggerFactory.Instance);

    private static object CreateAzureStorage(LocalOptions options, string storageConnectionString) =>
        new AzureStorageOrchestrationService(new AzureStorageOrchestrationServiceSettings
        {
            TaskHubName = options.HubName,
            StorageAccountClientProvider = new StorageAccountClientProvider(storageConnectionString),
            PartitionCount = 4,
            // A host killed mid-run leaves its work items invisible for this long before another start picks them up.
            WorkItemQueueVisibilityTimeout = TimeSpan.FromSeconds(20),
            ControlQueueVisibilityTimeout = TimeSpan.FromSeconds(20),
            MaxQueuePollingInterval = TimeSpan.FromSeconds(1),
            MaxConcurrentTaskActivityWorkItems = MaxConcurrentWorkItems,
            MaxConcurrentTaskOrchestrationWorkItems = MaxConcurrentWorkItems,
            LeaseInterval = TimeSpan.FromSeconds(15),
            LeaseRenewInterval = TimeSpan.FromSeconds(5),
            LeaseAcquireInterval = TimeSpan.FromSeconds(2),
        });

    /// <summary>Creates the task hub's queues, tables and containers before the dispatchers start.</summary>
    private sealed class TaskHubBootstrap(IOrchestrationService service) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => service.CreateIfNotExistsAsync();

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
