using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Sandstorm.Api;
using Sandstorm.Api.Batches;
using Sandstorm.Api.Edge;
using Sandstorm.Local;
using Sandstorm.Providers;
using Sandstorm.Storage;

namespace Sandstorm.Functions.Tests;

/// <summary>Builds each host's container from its own start-up code and checks what the one composition put in it.</summary>
public sealed class HostCompositionTests
{
    private const string Storage = "UseDevelopmentStorage=true";

    [Fact]
    public void FunctionsContainer_HasNoLocalExecution()
    {
        using var services = Functions().BuildServiceProvider();

        var providers = services.GetServices<ISandboxProvider>().Select(p => p.Capabilities.Provider).ToList();
        Assert.Contains("edge", providers);
        Assert.DoesNotContain("local", providers);
        Assert.Equal("azure-functions", services.GetRequiredService<HostProfile>().Name);
    }

    [Fact]
    public void FunctionsApp_DoesNotReferenceTheRuntimes()
    {
        var closure = AssemblyClosure(typeof(SandstormFunctionsSetup).Assembly);
        Assert.Contains("Sandstorm.Api", closure);
        Assert.DoesNotContain("Sandstorm.Runtimes", closure);
        Assert.DoesNotContain("Sandstorm.Providers.Local", closure);
        Assert.False(File.Exists(Path.Combine(FunctionsMetadataTests.OutputDirectory(), "Sandstorm.Runtimes.dll")), "the Functions app's build output carries the runtimes");
    }

    [Fact]
    public void FunctionsContainer_SendsBatchesToTheQueueItsTriggerTakes()
    {
        using var services = Functions(("Sandstorm:Storage:BatchQueue", "custom-batches")).BuildServiceProvider();

        var transport = services.GetRequiredService<BatchTransport>();
        Assert.Equal("custom-batches", transport.Queue);
        Assert.Equal(BatchTransport.FunctionsQueueTrigger, transport.Consumer);
        Assert.Null(transport.ServiceBusIntake);

        // The trigger's queue is the setting the sender reads, and it poisons after as many tries as the listener.
        var trigger = typeof(QueueFunctions).GetMethod(nameof(QueueFunctions.BatchQueue))!.GetParameters()[0].GetCustomAttribute<QueueTriggerAttribute>()!;
        Assert.Equal($"%{StorageOptions.Section}:{nameof(StorageOptions.BatchQueue)}%", trigger.QueueName);
        var hostJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(FunctionsMetadataTests.OutputDirectory(), "host.json"))).RootElement;
        Assert.Equal(transport.MaxDequeueCount, hostJson.GetProperty("extensions").GetProperty("queues").GetProperty("maxDequeueCount").GetInt32());

        // No in-process listener: the trigger is the only consumer.
        Assert.DoesNotContain(HostedServiceTypes(services), t => t == typeof(StorageBatchQueueListener));
    }

    [Fact]
    public async Task FunctionsContainer_WithServiceBus_ConsumesItsIntakeAndStillSendsToStorage()
    {
        await using var services = Functions(("Sandstorm:ServiceBus:FullyQualifiedNamespace", "sb-test.servicebus.windows.net")).BuildServiceProvider();

        var transport = services.GetRequiredService<BatchTransport>();
        Assert.Equal("sandstorm-batches", transport.ServiceBusIntake);
        Assert.Equal(BatchTransport.FunctionsQueueTrigger, transport.Consumer);
        Assert.Contains(typeof(ServiceBusBatchProcessor), HostedServiceTypes(services));
    }

    [Fact]
    public void FunctionsComposition_RefusesAReoptimizationScheduleOfOff()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Functions(("Sandstorm:Reoptimize:Schedule", "off")));
        Assert.Contains("timer trigger", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void LocalContainer_RunsCodeItselfAndItsOwnLoops()
    {
        var state = Directory.CreateTempSubdirectory("sandstorm-composition-");
        try
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.AddLocalHost(new LocalOptions { Durable = "in-memory", Storage = Storage, StateDirectory = state.FullName, Urls = "http://127.0.0.1:0" }, Storage);
            builder.Services.AddSandstormControlPlane(builder.Configuration, LocalHostSetup.Profile);
            using var app = builder.Build();
            var services = app.Services;

            var local = Assert.Single(services.GetServices<ISandboxProvider>(), p => p.Capabilities.Provider == "local");
            Assert.Contains(local.Capabilities.Runtimes, r => r.Name == "bwrap");
            Assert.Contains(local.Capabilities.Runtimes, r => r.Name == "gvisor");
            Assert.Contains(local.Capabilities.Runtimes, r => r.Name == "process");

            var transport = services.GetRequiredService<BatchTransport>();
            Assert.Equal(BatchTransport.InProcessListener, transport.Consumer);
            Assert.Equal(services.GetRequiredService<Microsoft.Extensions.Options.IOptions<StorageOptions>>().Value.BatchQueue, transport.Queue);
            var hosted = HostedServiceTypes(services);
            Assert.Contains(typeof(StorageBatchQueueListener), hosted);
            Assert.Contains(typeof(EdgeSweeperService), hosted);
            Assert.Contains(typeof(ReoptimizationService), hosted);
            Assert.NotNull(services.GetRequiredService<ReoptimizationSchedule>().Cron);
        }
        finally
        {
            state.Delete(recursive: true);
        }
    }

    private static ServiceCollection Functions(params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(
            new Dictionary<string, string?> { ["ConnectionStrings:Storage"] = Storage }
                .Concat(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddSandstormFunctions(configuration);
        return services;
    }

    private static List<Type> HostedServiceTypes(IServiceProvider services) =>
        [.. services.GetServices<IHostedService>().Select(s => s.GetType())];

    private static HashSet<string> AssemblyClosure(Assembly root)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<AssemblyName>([root.GetName()]);
        while (pending.TryPop(out var name))
        {
            if (name.Name is not { } simple || !simple.StartsWith("Sandstorm", StringComparison.Ordinal) || !seen.Add(simple))
            {
                continue;
            }

            foreach (var reference in Assembly.Load(name).GetReferencedAssemblies())
            {
                pending.Push(reference);
            }
        }

        return seen;
    }
}
