using System.Diagnostics;
using Microsoft.DurableTask;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Sandstorm.Api;
using Sandstorm.Api.Observability;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Observability;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.StandIns;
using Sandstorm.Testing;
using static Sandstorm.Core.Observability.ObservabilityNames;

namespace Sandstorm.Orchestrations.Tests;

/// <summary>
/// A run's trace and metrics, as the control plane's own observability registration makes them, read back through the
/// OpenTelemetry in-memory exporters: one trace per run continuing the caller's <c>traceparent</c>, provider calls as
/// children of the steps, the run metrics with their tags, and nothing made by the orchestrator however often it replays.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class RunObservabilityTests(AzuriteFixture azurite)
{
    private static readonly string[] Steps = [Spans.Route, Spans.Provision, Spans.Execute, Spans.Monitor, Spans.Settle];

    private static RunRequest Python(string code, IsolationLevel level = IsolationLevel.None) =>
        new() { Code = code, Language = Languages.Python, IsolationLevel = level, Timeout = 10_000 };

    [Fact]
    public async Task Run_WithTheCallersTraceParent_IsOneTraceOfItsFiveSteps()
    {
        var telemetry = new Telemetry();
        await using var host = await PipelineHost.StartAsync(azurite, telemetry.Register);
        var caller = Caller.Create();

        var input = await host.StartRunAsync(Python("print('traced')"), traceParent: caller.TraceParent);
        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.Succeeded, outcome.Status);
        var spans = telemetry.StepsOf(input.RunId);
        Assert.Equal(Steps, spans.Select(s => s.OperationName));
        Assert.All(spans, s =>
        {
            Assert.Equal(caller.TraceId, s.TraceId);
            Assert.Equal(caller.SpanId, s.ParentSpanId);
            Assert.Equal(input.TenantId, s.GetTagItem(Attributes.TenantId));
        });
        Assert.Equal("local/process/local", spans[0].GetTagItem(Attributes.Chosen));
        var settle = spans[^1];
        Assert.Equal("succeeded", settle.GetTagItem(Attributes.Status));
        Assert.Equal(ActivityStatusCode.Unset, settle.Status);

        var metrics = telemetry.Collect(host);
        var local = new Dictionary<string, object?> { [Attributes.Provider] = "local", [Attributes.Runtime] = "process" };
        Assert.Equal(1, metrics.Sum(Metrics.RunsStarted, local, (Attributes.Isolation, "none")));
        Assert.Equal(1, metrics.Sum(Metrics.RunsSettled, local, (Attributes.Status, "succeeded")));
        Assert.Equal(1, metrics.HistogramCount(Metrics.RunDuration, local, (Attributes.Status, "succeeded")));
        Assert.Equal(1, metrics.HistogramCount(Metrics.ExecutionDuration, local, (Attributes.Status, "succeeded")));
    }

    [Fact]
    public async Task Run_WithoutATraceParent_StillKeepsItsStepsInOneTrace()
    {
        var telemetry = new Telemetry();
        await using var host = await PipelineHost.StartAsync(azurite, telemetry.Register);

        var input = await host.StartRunAsync(Python("print(1)"));
        await host.CompleteAsync(input);

        var spans = telemetry.StepsOf(input.RunId);
        Assert.Equal(Steps, spans.Select(s => s.OperationName));
        var derived = SandstormDiagnostics.ParentOf(null, input.RunId);
        Assert.All(spans, s => Assert.Equal((derived.TraceId, derived.SpanId), (s.TraceId, s.ParentSpanId)));
    }

    [Fact]
    public async Task Run_OnACloud_ItsApiCallsAreChildSpansOfTheStepsThatMadeThem()
    {
        await using var e2b = await E2BStandIn.StartAsync();
        var cloud = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Sandstorm:Providers:E2B:BaseUrl"] = e2b.BaseUrl.ToString(),
            ["Sandstorm:Providers:E2B:SandboxUrl"] = e2b.BaseUrl.ToString(),
            ["Sandstorm:Providers:E2B:ApiKey"] = E2BStandIn.ApiKey,
        }).Build();
        var telemetry = new Telemetry();
        await using var host = await PipelineHost.StartAsync(azurite, services =>
        {
            services.AddSandstormCloudProviders(cloud);
            telemetry.Register(services);
        });
        var caller = Caller.Create();

        var request = Python("print('in the cloud')", IsolationLevel.Maximum) with { Constraints = new RunConstraints { ExcludeProviders = ["local"] } };
        var input = await host.StartRunAsync(request, traceParent: caller.TraceParent);
        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.Succeeded, outcome.Status);
        var steps = telemetry.StepsOf(input.RunId);
        Assert.Equal(Steps, steps.Select(s => s.OperationName));
        var provision = steps.Single(s => s.OperationName == Spans.Provision);
        var execute = steps.Single(s => s.OperationName == Spans.Execute);
        Assert.Equal("e2b", provision.GetTagItem(Attributes.Provider));

        // The adapter's calls to the cloud's API: HTTP client spans under the step that made them, in the run's trace.
        var all = telemetry.Spans.Snapshot();
        var calls = all.Where(s => s.Kind == ActivityKind.Client && Equals(s.GetTagItem("server.port"), e2b.BaseUrl.Port)).ToList();
        Assert.Contains(calls, c => c.ParentSpanId == provision.SpanId && (string?)c.GetTagItem("http.request.method") == "POST");
        Assert.Contains(calls, c => c.ParentSpanId == execute.SpanId);
        Assert.All(calls, c => Assert.Equal(caller.TraceId, c.TraceId));

        // The trace crossed the wire: the stand-in's server spans continue the traceparent each call carried.
        var callIds = calls.Select(c => c.SpanId).ToHashSet();
        Assert.Contains(all, s => s.Kind == ActivityKind.Server && callIds.Contains(s.ParentSpanId));

        var metrics = telemetry.Collect(host);
        var e2bRun = new Dictionary<string, object?> { [Attributes.Provider] = "e2b", [Attributes.Runtime] = "firecracker" };
        Assert.Equal(1, metrics.Sum(Metrics.RunsStarted, e2bRun, (Attributes.Isolation, "maximum")));
        Assert.Equal(1, metrics.Sum(Metrics.RunsSettled, e2bRun, (Attributes.Status, "succeeded")));
        var record = await host.RecordAsync(input);
        Assert.Equal((double)record!.Result!.Cost!.Total, metrics.SumDouble(Metrics.RunCost, new Dictionary<string, object?> { [Attributes.Provider] = "e2b" }), 9);
        Assert.True(record.Result.Cost.Total > 0, "a cloud run costs something");

        // The breaker of the provider that answered: closed.
        Assert.Equal(SandstormGauges.CircuitValue(Polly.CircuitBreaker.CircuitState.Closed), metrics.Gauge(Metrics.ProviderCircuitState, (Attributes.Provider, "e2b"), (Attributes.CircuitState, "closed")));
    }

    [Fact]
    public async Task Run_WhoseOrchestrationReplays_HasOneSpanAndOneMeasurementPerActivityExecution()
    {
        var episodes = 0;
        var replays = 0;
        var telemetry = new Telemetry();
        await using var host = await PipelineHost.StartAsync(azurite, telemetry.Register, registry =>
            registry.AddOrchestratorFunc<RunInput, RunOutcome>("CountedSandboxRun", (context, input) =>
            {
                Interlocked.Increment(ref episodes);
                if (context.IsReplaying)
                {
                    Interlocked.Increment(ref replays);
                }

                return SandboxRunOrchestrator.RunAsync(context, input);
            }));
        var caller = Caller.Create();

        var input = await host.StartRunAsync(Python("print('replayed')"), traceParent: caller.TraceParent, orchestrator: "CountedSandboxRun");
        await host.CompleteAsync(input);

        // Each step's completion replays the orchestrator from the start.
        Assert.True(replays >= Steps.Length - 1, $"the orchestration replayed {replays} times in {episodes} episodes");
        var spans = telemetry.Spans.Snapshot().Where(s => s.Source.Name == Source && s.TraceId == caller.TraceId).ToList();
        Assert.Equal(Steps, spans.OrderBy(s => s.StartTimeUtc).Select(s => s.OperationName));

        var metrics = telemetry.Collect(host);
        var local = new Dictionary<string, object?> { [Attributes.Provider] = "local", [Attributes.Runtime] = "process" };
        Assert.Equal(1, metrics.Sum(Metrics.RunsStarted, local));
        Assert.Equal(1, metrics.Sum(Metrics.RunsSettled, local));
        Assert.Equal(1, metrics.HistogramCount(Metrics.RunDuration, local));
    }

    /// <summary>A caller's span: the <c>traceparent</c> it would send.</summary>
    private sealed record Caller(ActivityTraceId TraceId, ActivitySpanId SpanId)
    {
        public string TraceParent => $"00-{TraceId}-{SpanId}-01";

        public static Caller Create() => new(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom());
    }

    /// <summary>The control plane's observability registration plus in-memory exporters the test reads.</summary>
    private sealed class Telemetry
    {
        public SynchronizedList<Activity> Spans { get; } = new();

        public SynchronizedList<MetricSnapshot> Metrics { get; } = new();

        public void Register(IServiceCollection services)
        {
            services.AddSandstormObservability(new ConfigurationBuilder().Build(), new HostProfile { Name = "orchestration-tests" });
            services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(Spans));
            services.ConfigureOpenTelemetryMeterProvider(metrics => metrics.AddInMemoryExporter(Metrics));
        }

        /// <summary>The run's step spans (Sandstorm's source), in the order they started.</summary>
        public IReadOnlyList<Activity> StepsOf(string runId) =>
            [.. Spans.Snapshot().Where(s => s.Source.Name == Source && (string?)s.GetTagItem(Attributes.RunId) == runId).OrderBy(s => s.StartTimeUtc)];

        /// <summary>Collects every metric now (cumulative since the host started).</summary>
        public MetricReadings Collect(PipelineHost host)
        {
            Metrics.Clear();
            Assert.True(host.Services.GetRequiredService<MeterProvider>().ForceFlush(10_000), "metrics did not flush");
            return new MetricReadings(Metrics.Snapshot());
        }
    }
}
