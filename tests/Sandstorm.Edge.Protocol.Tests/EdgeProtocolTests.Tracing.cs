using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Sandstorm.Core.Contracts;
using Sandstorm.Edge.Agent;
using Sandstorm.Testing;
using static Sandstorm.Core.Observability.ObservabilityNames;

namespace Sandstorm.Edge.Protocol.Tests;

/// <summary>An edge run's trace: from the caller's request through the control plane's steps to the agent's job and back.</summary>
public sealed partial class EdgeProtocolTests
{
    [Fact]
    public async Task EdgeRun_CalledFromATrace_IsOneTraceFromTheCallerToTheAgentsJobAndBack()
    {
        var host = Host;
        var a = await host.CreateTenantAsync("traced");
        await using var agent = await StartAgentAsync(host, a.Key, "traced");
        var agentSpans = new SynchronizedList<Activity>();
        var agentMetrics = new SynchronizedList<MetricSnapshot>();
        using var agentTelemetry = EdgeObservability.Create(
            agent.Config, new ConfigurationBuilder().Build(), tracing => tracing.AddInMemoryExporter(agentSpans), metrics => metrics.AddInMemoryExporter(agentMetrics));

        // The caller is itself traced (and sampled): its request carries its traceparent.
        string runId;
        ActivityTraceId traceId;
        ActivitySpanId callerId;
        using (var caller = new Activity("test-caller").SetIdFormat(ActivityIdFormat.W3C))
        {
            caller.ActivityTraceFlags = ActivityTraceFlags.Recorded;
            caller.Start();
            (traceId, callerId) = (caller.TraceId, caller.SpanId);
            runId = await host.SubmitAsync(a.Key, "print('traced on the edge')");
        }

        var run = await host.WaitRunAsync(a.Key, runId);
        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal("edge", run.Provider);

        // Control plane: the API request continued the caller's trace; the submission is its child, every step the submission's.
        var spans = await Poll.UntilAsync(
            () => Task.FromResult(new SpanList(host.Spans.Snapshot().Where(s => s.TraceId == traceId))),
            s => s.Any(x => x.OperationName == Spans.Settle) && s.Any(x => x.OperationName == Spans.EdgeDeliver),
            Deadline,
            "the run's settle span and the agent's delivery span");
        var call = spans.Single(s => s.Kind == ActivityKind.Client && s.ParentSpanId == callerId);
        var request = spans.Single(s => s.Kind == ActivityKind.Server && s.ParentSpanId == call.SpanId);
        var submit = spans.Single(s => s.OperationName == Spans.Submit);
        Assert.Equal(request.SpanId, submit.ParentSpanId);
        Assert.Equal(runId, submit.GetTagItem(Attributes.RunId));
        foreach (var step in new[] { Spans.Route, Spans.Provision, Spans.Execute, Spans.Monitor, Spans.Settle })
        {
            Assert.Equal(submit.SpanId, spans.Single(s => s.OperationName == step).ParentSpanId);
        }

        // The agent: its job span is the execute step's child, exported by the agent's own setup.
        var execute = spans.Single(s => s.OperationName == Spans.Execute);
        var job = Assert.Single(agentSpans.Snapshot(), s => s.OperationName == Spans.EdgeJob && (string?)s.GetTagItem(Attributes.RunId) == runId);
        Assert.Equal((traceId, execute.SpanId, ActivityKind.Consumer), (job.TraceId, job.ParentSpanId, job.Kind));
        Assert.Equal(("bwrap", "succeeded", agent.AgentId), (job.GetTagItem(Attributes.Runtime), job.GetTagItem(Attributes.Outcome), job.GetTagItem(Attributes.AgentId)));
        Assert.Equal(execute.GetTagItem(Attributes.JobId), job.GetTagItem(Attributes.JobId));

        // Back: the result's delivery continues the trace, through the agent's HTTP call, into the control plane's request.
        var deliver = spans.Single(s => s.OperationName == Spans.EdgeDeliver);
        Assert.Equal(job.SpanId, deliver.ParentSpanId);
        var post = spans.Single(s => s.Kind == ActivityKind.Client && s.ParentSpanId == deliver.SpanId);
        Assert.Contains(spans, s => s.Kind == ActivityKind.Server && s.ParentSpanId == post.SpanId);

        agentTelemetry.Flush();
        var jobs = new MetricReadings(agentMetrics.Snapshot())
            .Sum(Metrics.EdgeJobs, new Dictionary<string, object?> { [Attributes.Runtime] = "bwrap", [Attributes.Outcome] = "succeeded" });
        Assert.Equal(1, jobs);
    }
}

/// <summary>Spans that print their names, kinds and parents when a wait for them times out.</summary>
internal sealed class SpanList(IEnumerable<Activity> spans) : List<Activity>(spans)
{
    public override string ToString() =>
        string.Join("; ", this.Select(s => $"{s.OperationName} ({s.Kind}, {s.Source.Name}) {s.SpanId} <- {s.ParentSpanId}"));
}
