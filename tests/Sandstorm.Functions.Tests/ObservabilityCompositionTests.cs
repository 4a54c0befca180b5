using System.Reflection;
using Azure.Core;
using Azure.Monitor.OpenTelemetry.AspNetCore;
using Azure.Storage.Queues;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Sandstorm.Api.Observability;
using Sandstorm.Core.Configuration;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Observability;
using Sandstorm.Providers.StandIns;
using Sandstorm.Storage.Edge;
using Sandstorm.Testing;
using static Sandstorm.Core.Observability.ObservabilityNames;

namespace Sandstorm.Functions.Tests;

/// <summary>
/// What the one composition sets up for OpenTelemetry in the Functions app's container: exporters chosen by the standard
/// settings (found by inspecting the built providers, and OTLP also by what reaches a collector stand-in), and the gauges
/// reading real storage.
/// </summary>
public sealed class ObservabilityCompositionTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public void FunctionsContainer_WithoutExporterSettings_ExportsNowhere()
    {
        using var services = Functions().BuildServiceProvider();

        Assert.Empty(ExporterTypes(services.GetRequiredService<TracerProvider>()));
        Assert.Empty(ExporterTypes(services.GetRequiredService<MeterProvider>()));
    }

    [Fact]
    public async Task FunctionsContainer_WithAnOtlpEndpoint_ExportsTracesAndMetricsThere()
    {
        await using var collector = await TelemetryStandIn.StartAsync();
        await using var services = Functions(
            (SandstormSettings.OtlpEndpoint, collector.BaseUrl.ToString().TrimEnd('/')),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")).BuildServiceProvider();
        var tracing = services.GetRequiredService<TracerProvider>();
        var metrics = services.GetRequiredService<MeterProvider>();

        Assert.Contains("OtlpTraceExporter", ExporterTypes(tracing));
        Assert.Contains("OtlpMetricExporter", ExporterTypes(metrics));

        var parent = SandstormDiagnostics.ParentOf(null, "run_otlp_check");
        using (SandstormDiagnostics.StartRunSpan(Spans.Route, "run_otlp_check", "tenant-otlp", null))
        {
            SandstormDiagnostics.RunsSettled.Add(1, new KeyValuePair<string, object?>(Attributes.Provider, "otlp-check"));
        }

        Assert.True(tracing.ForceFlush(10_000), "traces did not flush");
        Assert.True(metrics.ForceFlush(10_000), "metrics did not flush");
        var exports = collector.Exports;
        var traceId = new byte[16];
        parent.TraceId.CopyTo(traceId);
        Assert.Contains(exports, e => e.Path == "/v1/traces" && e.Contains(Spans.Route) && e.Contains(traceId) && e.Contains("run_otlp_check"));
        Assert.Contains(exports, e => e.Path == "/v1/metrics" && e.Contains(Metrics.RunsSettled) && e.Contains(ObservabilityServiceCollectionExtensions.ServiceName));
    }

    [Fact]
    public async Task FunctionsContainer_WithAnApplicationInsightsConnectionString_ExportsToAzureMonitorAsTheAppIdentity()
    {
        var credential = new StandInCredential();
        const string connection = "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=https://ingestion.invalid/";
        await using var services = Functions(
            s => s.AddSingleton<TokenCredential>(credential),
            (SandstormSettings.ApplicationInsightsConnectionString, connection),
            ("AzureMonitor:EnableLiveMetrics", "false")).BuildServiceProvider();

        // The exporter attaches its trace processor when the host starts its hosted services.
        foreach (var hosted in services.GetServices<IHostedService>().Where(h => h.GetType().Namespace?.StartsWith("Azure.Monitor", StringComparison.Ordinal) == true))
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        Assert.Contains("AzureMonitorTraceExporter", ExporterTypes(services.GetRequiredService<TracerProvider>()));
        Assert.Contains("AzureMonitorMetricExporter", ExporterTypes(services.GetRequiredService<MeterProvider>()));
        var options = services.GetRequiredService<IOptionsMonitor<AzureMonitorOptions>>().Get(Options.DefaultName);
        Assert.Equal(connection, options.ConnectionString);

        // Local authentication is off on the component: the exporter must sign in with the app's one credential.
        Assert.Same(credential, options.Credential);
    }

    [Fact]
    public async Task FunctionsContainer_Gauges_ReportTheBatchQueueDepthAndTheLiveEdgeAgents()
    {
        var prefix = "o" + Guid.NewGuid().ToString("N")[..10];
        var region = "obs-" + prefix;
        var exported = new SynchronizedList<MetricSnapshot>();
        await using var services = Functions(
            s => s.ConfigureOpenTelemetryMeterProvider(m => m.AddInMemoryExporter(exported)),
            ("ConnectionStrings:Storage", azurite.ConnectionString),
            ("Sandstorm:Storage:Prefix", prefix),
            ("Sandstorm:Storage:BatchQueue", prefix + "-batches")).BuildServiceProvider();
        var queue = services.GetRequiredService<QueueServiceClient>().GetQueueClient(prefix + "-batches");
        await queue.CreateIfNotExistsAsync();
        for (var i = 0; i < 3; i++)
        {
            await queue.SendMessageAsync("{}");
        }

        var agents = services.GetRequiredService<EdgeAgentStore>();
        foreach (var name in new[] { "live-1", "live-2", "silent" })
        {
            var (agent, _) = await agents.EnrollAsync("tenant-gauges", name, region, new Dictionary<string, string>(), vpcMode: false, CancellationToken.None);
            if (name != "silent")
            {
                await agents.HeartbeatAsync("tenant-gauges", agent.AgentId, new EdgeHeartbeat { Runtimes = [] }, CancellationToken.None);
            }
        }

        var meter = services.GetRequiredService<MeterProvider>();
        var readings = await Poll.UntilAsync(
            () =>
            {
                exported.Clear();
                meter.ForceFlush(10_000);
                return Task.FromResult(new MetricReadings(exported.Snapshot()));
            },
            r => r.Gauge(Metrics.BatchQueueDepth, (Attributes.QueueName, prefix + "-batches")) is not null
                && r.Gauge(Metrics.EdgeAgentsLive, (Attributes.Region, region)) is not null,
            Deadline,
            "the queue depth and live agent gauges");

        Assert.Equal(3, readings.Gauge(Metrics.BatchQueueDepth, (Attributes.QueueName, prefix + "-batches")));
        Assert.Equal(2, readings.Gauge(Metrics.EdgeAgentsLive, (Attributes.Region, region)));
    }

    [Theory]
    [InlineData("POST", "/v1/runs", null, true)]
    [InlineData("POST", "/v1/edge/agents/agt_1/jobs/job_run_1/result", null, true)]
    [InlineData("POST", "/v1/edge/agents/agt_1/heartbeat", null, false)]
    [InlineData("GET", "/v1/edge/agents/agt_1/jobs", null, false)]
    [InlineData("POST", "/v1/edge/agents/agt_1/telemetry", null, false)]
    [InlineData("POST", "/TaskHubSidecarService/CompleteActivityTask", "application/grpc", false)]
    public void IsApiRequest_TracesTheApiButNotLoopsOrTheSidecar(string method, string path, string? contentType, bool traced)
    {
        var http = new DefaultHttpContext();
        http.Request.Method = method;
        http.Request.Path = path;
        http.Request.ContentType = contentType;

        Assert.Equal(traced, ObservabilityServiceCollectionExtensions.IsApiRequest(http));
    }

    private static ServiceCollection Functions(params (string Key, string Value)[] settings) => Functions(null, settings);

    private static ServiceCollection Functions(Action<IServiceCollection>? configure, params (string Key, string Value)[] settings)
    {
        var values = new Dictionary<string, string?> { ["ConnectionStrings:Storage"] = "UseDevelopmentStorage=true" };
        foreach (var (key, value) in settings)
        {
            values[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<IConfiguration>(configuration);
        configure?.Invoke(services);
        services.AddSandstormFunctions(configuration);
        return services;
    }

    /// <summary>
    /// The exporters a built provider feeds: type names ending in <c>Exporter</c> found by walking its fields through the
    /// OpenTelemetry and Azure Monitor objects it holds (its processors and readers), never into the service provider.
    /// </summary>
    private static HashSet<string> ExporterTypes(object provider)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var pending = new Queue<(object Value, int Depth)>([(provider, 0)]);
        while (pending.TryDequeue(out var item))
        {
            var (value, depth) = item;
            if (!seen.Add(value) || depth > 8)
            {
                continue;
            }

            var type = value.GetType();
            if (type.Name.EndsWith("Exporter", StringComparison.Ordinal) || type.Name.Contains("Exporter`", StringComparison.Ordinal))
            {
                found.Add(type.Name.Split('`')[0]);
            }

            if (value is System.Collections.IEnumerable items and not string)
            {
                foreach (var element in items)
                {
                    if (element is not null && Walkable(element.GetType()))
                    {
                        pending.Enqueue((element, depth + 1));
                    }
                }
            }

            for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
            {
                foreach (var field in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                {
                    if (field.GetValue(value) is { } child && (Walkable(child.GetType()) || child is Array))
                    {
                        pending.Enqueue((child, depth + 1));
                    }
                }
            }
        }

        return found;
    }

    private static bool Walkable(Type type) =>
        type.Namespace is { } ns && (ns.StartsWith("OpenTelemetry", StringComparison.Ordinal) || ns.StartsWith("Azure.Monitor", StringComparison.Ordinal));

    /// <summary>Stands in for Entra ID (not reachable here): hands out a fixed token.</summary>
    private sealed class StandInCredential : TokenCredential
    {
        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            new("stand-in-token", DateTimeOffset.UtcNow.AddHours(1));

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            ValueTask.FromResult(GetToken(requestContext, cancellationToken));
    }
}
