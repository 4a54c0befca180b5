using Sandstorm.Core.Contracts;

namespace Sandstorm.Telemetry;

/// <summary>Edge agents' samples onto the ingestion path (besides the per-job index the agent protocol keeps).</summary>
public static class EdgeSamples
{
    /// <summary>Publishes each event of an agent's batch; nothing when telemetry is not registered.</summary>
    public static void Publish(ITelemetrySink? sink, string tenantId, string agentId, IReadOnlyList<EdgeTelemetryEvent> events)
    {
        if (sink is null)
        {
            return;
        }

        foreach (var e in events)
        {
            sink.Publish(new TelemetryEvent
            {
                Kind = TelemetryKind.EdgeSample,
                Time = e.At,
                TenantId = tenantId,
                AgentId = agentId,
                JobId = e.JobId,
                Name = e.Kind,
                RunId = e.EventId,
                Data = e.Data,
            });
        }
    }
}
