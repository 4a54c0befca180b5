using System.Diagnostics;
using Azure.Core;
using Azure.Monitor.OpenTelemetry.AspNetCore;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Instrumentation.AspNetCore;
using OpenTelemetry.Instrumentation.Http;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Sandstorm.Core.Configuration;
using Sandstorm.Core.Observability;

namespace Sandstorm.Api.Observability;

/// <summary>
/// OpenTelemetry for the control plane, the same on every host: Sandstorm's own spans and metrics
/// (<see cref="ObservabilityNames"/>), the API's incoming requests, outgoing HTTP calls that belong to a trace (the
/// sandbox clouds, the durable engine's client, storage inside a run's step), and the <see cref="SandstormGauges"/>.
/// Exporters follow the standard settings: OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set (with the other
/// <c>OTEL_*</c> variables), Azure Monitor when <c>APPLICATIONINSIGHTS_CONNECTION_STRING</c> is set (signing in with the
/// host's one <see cref="TokenCredential"/>, since local authentication is off). Neither set: signals are made for any
/// in-process listener and exported nowhere.
/// </summary>
public static class ObservabilityServiceCollectionExtensions
{
    /// <summary>The standard service name variable; when unset the service is <see cref="ServiceName"/>.</summary>
    public const string ServiceNameKey = "OTEL_SERVICE_NAME";

    /// <summary>The control plane's <c>service.name</c>, whichever host runs it (<c>sandstorm.host</c> tells them apart).</summary>
    public const string ServiceName = "sandstorm-control-plane";

    /// <summary>Resource attribute naming the <see cref="HostProfile"/>.</summary>
    public const string HostAttribute = "sandstorm.host";

    public static IServiceCollection AddSandstormObservability(this IServiceCollection services, IConfiguration configuration, HostProfile host)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(host);
        var otel = services.AddOpenTelemetry()
            .ConfigureResource(resource =>
            {
                if (string.IsNullOrWhiteSpace(configuration[ServiceNameKey]))
                {
                    resource.AddService(ServiceName, serviceVersion: typeof(SandstormDiagnostics).Assembly.GetName().Version?.ToString());
                }

                resource.AddAttributes([new KeyValuePair<string, object>(HostAttribute, host.Name)]);
            })
            .WithTracing(tracing => tracing
                .AddSource(ObservabilityNames.Source)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation())
            .WithMetrics(metrics => metrics
                .AddMeter(ObservabilityNames.Source)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddInstrumentation(sp => ActivatorUtilities.CreateInstance<SandstormGauges>(sp)));

        if (!string.IsNullOrWhiteSpace(configuration[SandstormSettings.OtlpEndpoint]))
        {
            // Endpoint, protocol, headers and timeouts come from the standard OTEL_EXPORTER_OTLP_* settings.
            otel.UseOtlpExporter();
        }

        if (!string.IsNullOrWhiteSpace(configuration[SandstormSettings.ApplicationInsightsConnectionString]))
        {
            otel.UseAzureMonitor();
            services.AddOptions<AzureMonitorOptions>().Configure<TokenCredential>((options, credential) => options.Credential ??= credential);
        }

        // After the distro's own options (the last configuration wins), so one rule decides what is traced on every host.
        services.Configure<HttpClientTraceInstrumentationOptions>(options => options.FilterHttpRequestMessage = _ => SandstormDiagnostics.IsPartOfATrace(Activity.Current));
        services.Configure<AspNetCoreTraceInstrumentationOptions>(options => options.Filter = IsApiRequest);
        return services;
    }

    /// <summary>
    /// Incoming requests worth a span: the API's, but neither the durable engine's gRPC sidecar traffic (local host) nor
    /// the edge agents' own loops (heartbeats, job polls, telemetry batches), which would each start a trace every few
    /// seconds per agent. A job still continues its run's trace: it carries the <c>traceparent</c> itself, and its result
    /// post is traced.
    /// </summary>
    public static bool IsApiRequest(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var request = http.Request;
        if (request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true)
        {
            return false;
        }

        var path = request.Path.Value ?? "";
        return !(path.StartsWith("/v1/edge/agents/", StringComparison.Ordinal)
            && (path.EndsWith("/heartbeat", StringComparison.Ordinal) || path.EndsWith("/jobs", StringComparison.Ordinal) || path.EndsWith("/telemetry", StringComparison.Ordinal)));
    }
}
