using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using Sandstorm.Core.Configuration;
using Sandstorm.Core.Contracts;
using Sandstorm.Edge.Agent;
using Sandstorm.Providers.StandIns;
using static Sandstorm.Core.Observability.ObservabilityNames;

namespace Sandstorm.Edge.Tests;

/// <summary>The agent's own OpenTelemetry setup: nothing without an endpoint; with one, its job spans and metrics go there by OTLP.</summary>
public sealed class EdgeObservabilityTests
{
    private static readonly AgentConfig Config = new()
    {
        ControlPlane = "http://127.0.0.1:9",
        AgentId = "agt_observed",
        AgentToken = "eat_unused",
        TenantId = "tenant-observed",
        Name = "observed",
        Region = "lab",
    };

    [Fact]
    public void Start_WithoutAnOtlpEndpoint_SetsNothingUp()
    {
        Assert.Null(EdgeObservability.Start(Config, new ConfigurationBuilder().Build()));
    }

    [Fact]
    public async Task Start_WithAnOtlpEndpoint_ExportsTheJobSpanInItsRunsTraceAndTheJobCount()
    {
        await using var collector = await TelemetryStandIn.StartAsync();
        var settings = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [SandstormSettings.OtlpEndpoint] = collector.BaseUrl.ToString().TrimEnd('/'),
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        }).Build();
        var execute = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);
        var job = new EdgeJob
        {
            JobId = "job_run_observed",
            RunId = "run_observed",
            Spec = new ExecutionSpec { Language = Languages.Python, Code = "print(1)" },
            TraceParent = $"00-{execute.TraceId}-{execute.SpanId}-01",
        };

        using (var observability = EdgeObservability.Start(Config, settings))
        {
            Assert.NotNull(observability);
            using (var span = EdgeObservability.StartJob(job, Config))
            {
                Assert.NotNull(span);
                Assert.Equal((execute.TraceId, execute.SpanId), (span.TraceId, span.ParentSpanId));
                EdgeObservability.Finished(span, new EdgeJobResult { JobId = job.JobId, Result = new ExecutionResult { Runtime = "bwrap", ExitCode = 0 } });
            }

            observability.Flush();
        }

        var traceId = new byte[16];
        execute.TraceId.CopyTo(traceId);
        var exports = collector.Exports;
        Assert.Contains(exports, e => e.Path == "/v1/traces" && e.Contains(Spans.EdgeJob) && e.Contains(traceId) && e.Contains(EdgeObservability.ServiceName) && e.Contains("agt_observed"));
        Assert.Contains(exports, e => e.Path == "/v1/metrics" && e.Contains(Metrics.EdgeJobs) && e.Contains("succeeded"));
    }
}
