using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using static Sandstorm.Core.Observability.ObservabilityNames;

namespace Sandstorm.Core.Observability;

/// <summary>
/// Sandstorm's one <see cref="ActivitySource"/> and one <see cref="Meter"/> (both <see cref="ObservabilityNames.Source"/>),
/// the instruments recorded on it, and how a run's trace context travels: as a W3C <c>traceparent</c> string stored with
/// the run, so steps that run later, elsewhere or again (the durable engine replays and retries) parent their spans to it.
/// Only the .NET diagnostics APIs here: hosts choose exporters (the OpenTelemetry SDK), this library only emits.
/// </summary>
public static class SandstormDiagnostics
{
    private static readonly string? Version = typeof(SandstormDiagnostics).Assembly.GetName().Version?.ToString();

    public static ActivitySource ActivitySource { get; } = new(Source, Version);

    public static Meter Meter { get; } = new(Source, Version);

    /// <summary>Bucket boundaries (seconds) for run and execution durations: sub-second sandboxes to the longest timeouts.</summary>
    public static IReadOnlyList<double> DurationBuckets { get; } = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];

    public static Counter<long> RunsStarted { get; } =
        Meter.CreateCounter<long>(Metrics.RunsStarted, "{run}", "Runs that got a sandbox, by provider, runtime and isolation");

    public static Counter<long> RunsSettled { get; } =
        Meter.CreateCounter<long>(Metrics.RunsSettled, "{run}", "Runs settled, by status, provider and runtime");

    public static Histogram<double> RunDuration { get; } =
        Meter.CreateHistogram(Metrics.RunDuration, "s", "Time from submission to settlement", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });

    public static Histogram<double> ExecutionDuration { get; } =
        Meter.CreateHistogram(Metrics.ExecutionDuration, "s", "Wall time of the code in its sandbox", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });

    public static Counter<double> RunCost { get; } =
        Meter.CreateCounter<double>(Metrics.RunCost, "USD", "What runs cost the tenant: provider cost plus fees");

    public static Counter<long> EdgeJobs { get; } =
        Meter.CreateCounter<long>(Metrics.EdgeJobs, "{job}", "Jobs an edge agent finished, by runtime and outcome");

    /// <summary>
    /// Starts the span of a run's submission as a child of the current one (the API request, which continued the caller's
    /// <c>traceparent</c>); store <see cref="TraceParentOf"/> of it (or of the current span, when this one is not recorded) with the run.
    /// </summary>
    public static Activity? StartSubmit(string runId, string tenantId)
    {
        var span = ActivitySource.StartActivity(Spans.Submit, ActivityKind.Internal);
        span?.SetTag(Attributes.RunId, runId);
        span?.SetTag(Attributes.TenantId, tenantId);
        return span;
    }

    /// <summary>
    /// Starts a span of one run's step, parented to the run's stored <paramref name="traceParent"/> (see <see cref="ParentOf"/>),
    /// never to whatever happens to be current: a retried or re-run step lands in the run's trace all the same.
    /// Null when nothing listens or the trace is not sampled.
    /// </summary>
    public static Activity? StartRunSpan(string name, string runId, string tenantId, string? traceParent, ActivityKind kind = ActivityKind.Internal)
    {
        var span = ActivitySource.StartActivity(name, kind, ParentOf(traceParent, runId));
        span?.SetTag(Attributes.RunId, runId);
        span?.SetTag(Attributes.TenantId, tenantId);
        return span;
    }

    /// <summary>
    /// The context a run's spans continue: the stored <c>traceparent</c> when it parses, else one derived from the run id
    /// alone, so even a run started without one (an older orchestration, a batch item) keeps all its steps in one trace.
    /// </summary>
    public static ActivityContext ParentOf(string? traceParent, string runId)
    {
        if (traceParent is not null && ActivityContext.TryParse(traceParent, null, isRemote: true, out var parsed))
        {
            return parsed;
        }

        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes("sandstorm-run:" + runId), hash);
        return new ActivityContext(
            ActivityTraceId.CreateFromBytes(hash[..16]), ActivitySpanId.CreateFromBytes(hash[16..24]), ActivityTraceFlags.Recorded, isRemote: true);
    }

    /// <summary>The W3C <c>traceparent</c> of a span (null for none, or for an id that is not W3C).</summary>
    public static string? TraceParentOf(Activity? span) => span is { IdFormat: ActivityIdFormat.W3C } ? span.Id : null;

    /// <summary>
    /// Whether an outgoing HTTP call (<paramref name="call"/>, the client span being started) belongs in a trace: only when
    /// it is made inside a span (a run's step, an API request, an edge job), since background polls and loops would
    /// otherwise each start a trace of their own; and not when the Azure SDK already traces the same call itself.
    /// The one filter of the HttpClient instrumentation on the control plane and the edge agent.
    /// </summary>
    public static bool IsPartOfATrace(Activity? call) =>
        call?.Parent is { } parent && !parent.Source.Name.Equals("Azure.Core.Http", StringComparison.Ordinal);

    /// <summary>An enum value as a tag, spelled as on the wire (<c>timed_out</c>, <c>standard</c>).</summary>
    public static string TagOf<T>(T value)
        where T : struct, Enum => JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());

    /// <summary>Marks a span failed with a Sandstorm error code (or an exception's type) as <c>error.type</c>.</summary>
    public static void Fail(Activity? span, string errorType, string? description)
    {
        if (span is null)
        {
            return;
        }

        span.SetStatus(ActivityStatusCode.Error, description);
        span.SetTag(Attributes.ErrorType, errorType);
    }

    /// <summary>Records an exception on a span; returns false so it can sit in an exception filter without catching.</summary>
    public static bool Record(Activity? span, Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (span is not null)
        {
            span.AddException(exception);
            Fail(span, exception.GetType().FullName ?? exception.GetType().Name, exception.Message);
        }

        return false;
    }
}
