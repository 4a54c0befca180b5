namespace Sandstorm.Core.Observability;

/// <summary>
/// Every name Sandstorm gives its OpenTelemetry signals: the one source, its spans, its metrics and their attributes,
/// declared once and referenced everywhere (docs/observability.md lists them with their meaning).
/// </summary>
public static class ObservabilityNames
{
    /// <summary>Name of the one <see cref="System.Diagnostics.ActivitySource"/> and the one <see cref="System.Diagnostics.Metrics.Meter"/>.</summary>
    public const string Source = "Sandstorm";

    /// <summary>Span names: one trace per run, <see cref="Submit"/> first, then one span per pipeline step.</summary>
    public static class Spans
    {
        /// <summary>The API accepted a run (continues the caller's <c>traceparent</c>); every step of the run is its child.</summary>
        public const string Submit = "sandstorm.run.submit";

        public const string Route = "sandstorm.run.route";

        public const string Provision = "sandstorm.run.provision";

        public const string Execute = "sandstorm.run.execute";

        public const string Monitor = "sandstorm.run.monitor";

        public const string Settle = "sandstorm.run.settle";

        /// <summary>An edge agent running a job (child of <see cref="Execute"/>, on the agent's machine).</summary>
        public const string EdgeJob = "sandstorm.edge.job";

        /// <summary>An edge agent posting a job's result to the control plane (child of <see cref="EdgeJob"/>'s trace).</summary>
        public const string EdgeDeliver = "sandstorm.edge.deliver";
    }

    /// <summary>Metric names (instruments on the <see cref="Source"/> meter).</summary>
    public static class Metrics
    {
        /// <summary>Counter: runs that got a sandbox (provisioned), by provider, runtime and isolation.</summary>
        public const string RunsStarted = "sandstorm.runs.started";

        /// <summary>Counter: runs settled, by status, provider and runtime.</summary>
        public const string RunsSettled = "sandstorm.runs.settled";

        /// <summary>Histogram (s): submission to settlement.</summary>
        public const string RunDuration = "sandstorm.run.duration";

        /// <summary>Histogram (s): wall time of the code itself.</summary>
        public const string ExecutionDuration = "sandstorm.run.execution.duration";

        /// <summary>Counter (USD): what runs cost the tenant (provider cost plus fees), by provider and security tier.</summary>
        public const string RunCost = "sandstorm.run.cost";

        /// <summary>Observable gauge: each cloud provider's circuit breaker (0 closed, 1 half-open, 2 open, 3 isolated).</summary>
        public const string ProviderCircuitState = "sandstorm.provider.circuit.state";

        /// <summary>Observable gauge: approximate messages waiting in the batch queue.</summary>
        public const string BatchQueueDepth = "sandstorm.batch.queue.depth";

        /// <summary>Observable gauge: edge agents whose last heartbeat is within the agent timeout, by region.</summary>
        public const string EdgeAgentsLive = "sandstorm.edge.agents.live";

        /// <summary>Counter on an edge agent: jobs it finished, by runtime and outcome.</summary>
        public const string EdgeJobs = "sandstorm.edge.jobs";
    }

    /// <summary>Attribute (tag) names on spans and metrics.</summary>
    public static class Attributes
    {
        public const string RunId = "sandstorm.run.id";

        public const string TenantId = "sandstorm.tenant.id";

        public const string BatchId = "sandstorm.batch.id";

        public const string Status = "sandstorm.run.status";

        public const string Provider = "sandstorm.provider";

        public const string Runtime = "sandstorm.runtime";

        public const string Region = "sandstorm.region";

        public const string Isolation = "sandstorm.isolation";

        public const string Language = "sandstorm.language";

        public const string SecurityTier = "sandstorm.security.tier";

        public const string Strategy = "sandstorm.strategy";

        /// <summary>On a route span: the chosen candidate (<c>provider/runtime/region</c>).</summary>
        public const string Chosen = "sandstorm.route.chosen";

        /// <summary>On a route span: candidates considered.</summary>
        public const string Candidates = "sandstorm.route.candidates";

        /// <summary>On a provision span: the candidate tried (<c>provider/runtime/region</c>).</summary>
        public const string Candidate = "sandstorm.provision.candidate";

        public const string ExitCode = "sandstorm.execution.exit_code";

        /// <summary>On an execute span of an edge run: the job the agent takes.</summary>
        public const string JobId = "sandstorm.edge.job.id";

        public const string AgentId = "sandstorm.edge.agent.id";

        public const string Verdict = "sandstorm.monitor.verdict";

        public const string CostUsd = "sandstorm.cost.total_usd";

        public const string CircuitState = "sandstorm.circuit.state";

        /// <summary>Outcome of an edge job on the agent: succeeded, failed, refused, cancelled.</summary>
        public const string Outcome = "sandstorm.edge.job.outcome";

        /// <summary>The OpenTelemetry semantic convention for a failure's class (here: Sandstorm's error code).</summary>
        public const string ErrorType = "error.type";

        /// <summary>The OpenTelemetry semantic convention for a queue's name.</summary>
        public const string QueueName = "messaging.destination.name";
    }
}
