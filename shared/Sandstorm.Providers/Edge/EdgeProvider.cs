using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Observability;
using Sandstorm.Core.Pricing;
using Sandstorm.Storage;
using Sandstorm.Storage.Edge;

namespace Sandstorm.Providers.Edge;

/// <summary>
/// Edge agents in the customer's own network. What it offers a tenant is the union of that tenant's live agents
/// (heartbeat within <see cref="EdgeOptions.AgentTimeout"/>); a tenant's jobs only ever go to its own agents.
/// Provision picks the least-loaded live agent in the region; Execute stores a job that the agent takes by long poll;
/// the result comes back as the run's <c>job-completed:{jobId}</c> event. The job's spec travels in the job row when its
/// JSON fits the inline limit (16 KiB), else in a blob the control plane reads back when the agent polls.
/// Billed at <see cref="TierFees.EdgePrice"/>.
/// </summary>
public sealed class EdgeProvider(
    EdgeAgentStore agents,
    EdgeJobStore jobs,
    PayloadStore payloads,
    EdgeJobSignal signal,
    EdgeQuarantineStore quarantine,
    IOptions<EdgeOptions> options,
    TimeProvider time,
    ILogger<EdgeProvider> logger) : IDispatchingProvider, IShieldAlertTarget
{
    public const string Id = "edge";

    /// <summary>Lease data keys (non-secret).</summary>
    public const string TenantKey = "tenantId";
    public const string AgentKey = "agentId";
    public const string BootcImageKey = "bootcImage";

    private static readonly IReadOnlyList<RuntimeOffer> Offers =
    [
        new RuntimeOffer("process", IsolationLevel.None),
        new RuntimeOffer("bwrap", IsolationLevel.Standard),
        new RuntimeOffer("runc", IsolationLevel.Standard),
        new RuntimeOffer("podman", IsolationLevel.Standard),
        new RuntimeOffer("gvisor", IsolationLevel.Strong),
        new RuntimeOffer("qemu-microvm", IsolationLevel.Maximum),
    ];

    public ProviderCapabilities Capabilities { get; } = new()
    {
        Provider = Id,
        Runtimes = Offers,
        Regions = [],
        Languages = Languages.Supported,
        // Agents run offline sandboxes (no network): requirements cannot be installed there.
        Network = false,
        Price = TierFees.EdgePrice,
        Asynchronous = true,
    };

    /// <summary>The isolation the control plane knows a runtime of this name to give, or null for a runtime it does not know.</summary>
    public static IsolationLevel? KnownIsolation(string runtime) =>
        Offers.FirstOrDefault(o => string.Equals(o.Name, runtime, StringComparison.OrdinalIgnoreCase))?.Isolation;

    /// <summary>The job id of a run: derived from the run so a retried dispatch finds the job it already made.</summary>
    public static string JobIdOf(string runId) => "job_" + runId;

    public async ValueTask<ProviderCapabilities?> GetCapabilitiesAsync(string tenantId, CancellationToken cancellationToken)
    {
        var live = await LiveAgentsAsync(tenantId, cancellationToken);
        // One offer per runtime and level; its Shield coverage is the best any live agent gives (Provision then picks such an
        // agent when the run requires coverage).
        var runtimes = live
            .SelectMany(a => a.Heartbeat!.Runtimes.Where(r => r.Works))
            .GroupBy(r => (r.Name, r.Isolation))
            .Select(g => new RuntimeOffer(g.Key.Name, g.Key.Isolation) { Shield = g.Max(r => r.Shield) })
            .ToList();
        if (runtimes.Count == 0)
        {
            return null;
        }

        return Capabilities with
        {
            Runtimes = runtimes,
            Regions = [.. live.Select(a => a.Region).Distinct(StringComparer.OrdinalIgnoreCase)],
            Languages = [.. Languages.Supported.Where(l => live.Any(a => LanguagesOf(a).Contains(l)))],
            MaxCpu = live.Max(a => a.Heartbeat!.Cpu),
            MaxMemoryMiB = (int)Math.Min(int.MaxValue, live.Max(a => a.Heartbeat!.MemoryMiB)),
            BootImages = [.. live.Select(a => a.Heartbeat!.BootcImage).OfType<EdgeBootImage>().Distinct()],
        };
    }

    public async Task<SandboxLease> ProvisionAsync(ProvisionRequest request, CancellationToken cancellationToken)
    {
        var live = await LiveAgentsAsync(request.TenantId, cancellationToken);
        var agent = PickAgent(live, request.Region, request.Runtime, request.IsolationLevel, exclude: null, request.Language, request.RequireShieldCoverage, request.BootcImage)
            ?? throw new ProviderException(
                Id,
                ErrorCodes.ProvisionFailed,
                $"no live edge agent of this tenant in region '{request.Region}' offers runtime '{request.Runtime}' and language '{request.Language}'"
                + (request.RequireShieldCoverage ? " with Shield coverage" : "")
                + (request.BootcImage is { } wanted ? $" booted from '{wanted}'" : "") + $" ({live.Count} live agent(s))");
        logger.LogInformation("Run {RunId} placed on edge agent {AgentId} ({Region})", request.RunId, agent.AgentId, agent.Region);
        return new SandboxLease(Id, request.RunId, request.Runtime, agent.Region)
        {
            Data = request.BootcImage is { } image
                ? new Dictionary<string, string> { [TenantKey] = request.TenantId, [AgentKey] = agent.AgentId, [BootcImageKey] = image }
                : new Dictionary<string, string> { [TenantKey] = request.TenantId, [AgentKey] = agent.AgentId },
        };
    }

    public Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken) =>
        throw new ProviderException(Id, ErrorCodes.NotSupported, "edge executions are dispatched to an agent, not run synchronously");

    public async Task<string> DispatchAsync(SandboxLease lease, string runId, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        var (tenantId, agentId) = Owner(lease);
        if (spec.EntryPoint is { } entry && (await agents.GetAsync(tenantId, agentId, cancellationToken))?.Heartbeat?.Languages is null)
        {
            // An agent from before entry points would run the file's name as code: give it the file's content as the code
            // instead (the same program, from the main file next to it).
            spec = spec with { Code = spec.Files![entry], EntryPoint = null };
        }

        var jobId = JobIdOf(runId);
        var specJson = JsonSerializer.Serialize(spec, SandstormJson.Options);
        var now = time.GetUtcNow();
        var job = new EdgeJobRecord
        {
            TenantId = tenantId,
            JobId = jobId,
            RunId = runId,
            AgentId = agentId,
            Agents = [agentId],
            Runtime = string.IsNullOrEmpty(lease.Runtime) ? null : lease.Runtime,
            Region = lease.Region,
            IsolationLevel = spec.IsolationLevel,
            Spec = await payloads.PutAsync($"{tenantId}/{runId}/edge-job-spec.json", specJson, cancellationToken),
            CreatedAt = now,
            Deadline = now + spec.Timeout + options.Value.JobGrace,
            TraceParent = SandstormDiagnostics.TraceParentOf(Activity.Current),
            BootcImage = lease.Data?.GetValueOrDefault(BootcImageKey),
        };
        if (!await jobs.TryCreateAsync(job, cancellationToken))
        {
            logger.LogInformation("Job {JobId} of run {RunId} was already dispatched", jobId, runId);
        }

        signal.Notify(tenantId, agentId);
        return jobId;
    }

    public async Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        var (tenantId, _) = Owner(lease);
        var jobId = JobIdOf(lease.SandboxId);

        // A few rounds: a poll or the sweeper may change the row between our read and write.
        for (var round = 0; round < 5; round++)
        {
            var job = await jobs.GetAsync(tenantId, jobId, cancellationToken);
            if (job is null || job.State is EdgeJobState.Completed or EdgeJobState.Cancelled)
            {
                return;
            }

            // The agent never learns of it: a leased job runs to its own timeout and its late result is acknowledged and dropped.
            if (await jobs.TryUpdateAsync(job with { State = EdgeJobState.Cancelled, CompletedAt = time.GetUtcNow(), CompletedBy = "released" }, cancellationToken) is not null)
            {
                return;
            }
        }

        throw new ProviderException(Id, ErrorCodes.Conflict, $"job {jobId} kept changing while it was being released", transient: true);
    }

    /// <summary>A tenant's agents that heartbeated recently and reported their runtimes.</summary>
    public async Task<IReadOnlyList<EdgeAgentRecord>> LiveAgentsAsync(string tenantId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var all = await agents.ListAsync(tenantId, cancellationToken);
        return [.. all.Where(a => a.Heartbeat is not null && a.IsLive(now, options.Value.AgentTimeout))];
    }

    /// <summary>
    /// The least-loaded agent in the region whose named runtime works (any runtime of the level when none is named), that
    /// runs <paramref name="language"/> (any when null) — with Shield coverage when <paramref name="requireShield"/> —
    /// skipping <paramref name="exclude"/>; null when none fits.
    /// </summary>
    public static EdgeAgentRecord? PickAgent(IEnumerable<EdgeAgentRecord> live, string? region, string? runtime, IsolationLevel level, string? exclude, string? language = null, bool requireShield = false, string? bootcImage = null) =>
        live
            .Where(a => a.AgentId != exclude)
            .Where(a => bootcImage is null || Deployments.Matches(bootcImage, a.Heartbeat?.BootcImage))
            .Where(a => language is null || LanguagesOf(a).Contains(language))
            .Where(a => string.IsNullOrEmpty(region) || string.Equals(a.Region, region, StringComparison.OrdinalIgnoreCase))
            .Where(a => a.Heartbeat!.Runtimes.Any(r => r.Works
                && (!requireShield || r.Shield != ShieldCoverageLevel.None)
                && (string.IsNullOrEmpty(runtime)
                    ? r.Isolation == level
                    : string.Equals(r.Name, runtime, StringComparison.OrdinalIgnoreCase))))
            .OrderBy(a => (double)a.Heartbeat!.QueueDepth / Math.Max(1, a.Heartbeat.MaxConcurrency))
            .ThenBy(a => a.Heartbeat!.Load / Math.Max(1, a.Heartbeat.Cpu))
            .ThenBy(a => a.AgentId, StringComparer.Ordinal)
            .FirstOrDefault();

    /// <summary>The languages an agent runs: what it reports, or the baseline of agents that do not report them.</summary>
    public static IReadOnlyList<string> LanguagesOf(EdgeAgentRecord agent) => agent.Heartbeat?.Languages ?? Languages.Baseline;

    /// <summary>
    /// Hands a Falco alert to the tenant's live agents (only the sending agent, when an agent sent it): each matches it
    /// against its own sandboxes on its next heartbeat, kills the one it names (at or above the threshold) and reports the
    /// finding with that job's result. Null when the alert names no sandbox or pid, or no agent is live.
    /// </summary>
    public async Task<ShieldAlertMatch?> DeliverAsync(ShieldAlertDelivery alert, CancellationToken cancellationToken)
    {
        if (alert.SandboxIds.Count == 0 && alert.Pids.Count == 0)
        {
            return null;
        }

        var live = await LiveAgentsAsync(alert.TenantId, cancellationToken);
        var targets = live.Where(a => alert.AgentId is null || a.AgentId == alert.AgentId).ToList();
        if (targets.Count == 0)
        {
            return null;
        }

        var request = new EdgeQuarantineRequest { Finding = alert.Finding, SandboxIds = alert.SandboxIds, Pids = alert.Pids, Hostname = alert.Hostname, Kill = alert.Kill };
        foreach (var agent in targets)
        {
            await quarantine.AddAsync(alert.TenantId, agent.AgentId, request, cancellationToken);
        }

        logger.LogInformation("Falco alert {Rule} handed to {Agents} edge agent(s) of tenant {TenantId}", alert.Finding.Rule, targets.Count, alert.TenantId);
        return new ShieldAlertMatch { Provider = Id, Action = "requested", Finding = alert.Finding };
    }

    private static (string TenantId, string AgentId) Owner(SandboxLease lease) =>
        lease.Data is { } data && data.TryGetValue(TenantKey, out var tenant) && data.TryGetValue(AgentKey, out var agent)
            ? (tenant, agent)
            : throw new ProviderException(Id, ErrorCodes.Internal, $"lease {lease.SandboxId} carries no edge agent");
}
