using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Sandstorm.Core.Configuration;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Observability;
using static Sandstorm.Core.Observability.ObservabilityNames;

namespace Sandstorm.Edge.Agent;

/// <summary>
/// The agent's own OpenTelemetry: its job spans (children of the run's execute step, through the job's <c>traceparent</c>),
/// its calls to the control plane that belong to a job, and its job counter, exported by OTLP to the endpoint the
/// machine's standard <c>OTEL_EXPORTER_OTLP_*</c> variables name. Without <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> nothing is set up.
/// </summary>
public sealed class EdgeObservability : IDisposable
{
    /// <summary>The agent's <c>service.name</c> unless <c>OTEL_SERVICE_NAME</c> says otherwise.</summary>
    public const string ServiceName = "sandstorm-edge-agent";

    private readonly TracerProvider _tracing;
    private readonly MeterProvider _metrics;

    private EdgeObservability(TracerProvider tracing, MeterProvider metrics)
    {
        _tracing = tracing;
        _metrics = metrics;
    }

    /// <summary>
    /// OTLP export when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set in <paramref name="settings"/> (the process environment
    /// in <c>start</c>), configured by the standard <c>OTEL_EXPORTER_OTLP_*</c> keys there; else null.
    /// </summary>
    public static EdgeObservability? Start(AgentConfig config, IConfiguration settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return string.IsNullOrWhiteSpace(settings[SandstormSettings.OtlpEndpoint])
            ? null
            : Create(config, settings, tracing => tracing.AddOtlpExporter(), metrics => metrics.AddOtlpExporter());
    }

    /// <summary>The agent's providers, reading <paramref name="settings"/>, with the exporters <paramref name="exportTraces"/> and <paramref name="exportMetrics"/> add.</summary>
    public static EdgeObservability Create(AgentConfig config, IConfiguration settings, Action<TracerProviderBuilder> exportTraces, Action<MeterProviderBuilder> exportMetrics)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(exportTraces);
        ArgumentNullException.ThrowIfNull(exportMetrics);
        var resource = ResourceBuilder.CreateDefault();
        if (string.IsNullOrWhiteSpace(settings["OTEL_SERVICE_NAME"]))
        {
            resource.AddService(ServiceName, serviceVersion: typeof(EdgeObservability).Assembly.GetName().Version?.ToString(), serviceInstanceId: config.AgentId);
        }

        resource.AddAttributes([
            new KeyValuePair<string, object>(Attributes.AgentId, config.AgentId),
            new KeyValuePair<string, object>(Attributes.Region, config.Region ?? ""),
        ]);
        // The exporters read their OTEL_* options from this configuration rather than the process's own environment.
        var tracing = Sdk.CreateTracerProviderBuilder()
            .ConfigureServices(services => services.AddSingleton(settings))
            .SetResourceBuilder(resource)
            .AddSource(Source)
            .AddHttpClientInstrumentation(options => options.FilterHttpRequestMessage = _ => SandstormDiagnostics.IsPartOfATrace(Activity.Current));
        exportTraces(tracing);
        var metrics = Sdk.CreateMeterProviderBuilder()
            .ConfigureServices(services => services.AddSingleton(settings))
            .SetResourceBuilder(resource)
            .AddMeter(Source)
            .AddHttpClientInstrumentation();
        exportMetrics(metrics);
        return new EdgeObservability(tracing.Build()!, metrics.Build()!);
    }

    /// <summary>The span of one job on this agent: a child of the run's execute step.</summary>
    public static Activity? StartJob(EdgeJob job, AgentConfig config)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(config);
        var span = SandstormDiagnostics.StartRunSpan(Spans.EdgeJob, job.RunId, config.TenantId, job.TraceParent, ActivityKind.Consumer);
        span?.SetTag(Attributes.JobId, job.JobId);
        span?.SetTag(Attributes.AgentId, config.AgentId);
        span?.SetTag(Attributes.Isolation, SandstormDiagnostics.TagOf(job.Spec.IsolationLevel));
        return span;
    }

    /// <summary>Tags the job's span with what became of it and counts the job.</summary>
    public static void Finished(Activity? span, EdgeJobResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var runtime = result.Result?.Runtime ?? "none";
        var outcome = result switch
        {
            { Result: { TimedOut: false, OomKilled: false, ExitCode: 0 } } => "succeeded",
            { Result: not null } => "failed",
            { Error.Code: Core.Errors.ErrorCodes.Cancelled } => "cancelled",
            _ => "refused",
        };
        SandstormDiagnostics.EdgeJobs.Add(
            1,
            new KeyValuePair<string, object?>(Attributes.Runtime, runtime),
            new KeyValuePair<string, object?>(Attributes.Outcome, outcome));
        span?.SetTag(Attributes.Runtime, runtime);
        span?.SetTag(Attributes.Outcome, outcome);
        if (result.Result is { } executed)
        {
            span?.SetTag(Attributes.ExitCode, executed.ExitCode);
        }
        else if (result.Error is { } error)
        {
            SandstormDiagnostics.Fail(span, error.Code, error.Message);
        }
    }

    /// <summary>Sends what is buffered (on shutdown, so the last jobs' spans are not lost).</summary>
    public void Flush(int timeoutMilliseconds = 5000)
    {
        _tracing.ForceFlush(timeoutMilliseconds);
        _metrics.ForceFlush(timeoutMilliseconds);
    }

    public void Dispose()
    {
        _tracing.Dispose();
        _metrics.Dispose();
    }
}
