using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Azure;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Providers.Edge;
using Sandstorm.Storage;
using Sandstorm.Storage.Edge;

namespace Sandstorm.Api.Edge;

/// <summary>
/// The <c>/v1/edge/...</c> endpoints: a tenant creates enrollment tokens (API key); agents enrol with one, then heartbeat,
/// long-poll for jobs, post results and telemetry with their agent token. Agents only see their own tenant's jobs.
/// </summary>
public static partial class EdgeEndpoints
{
    public const int DefaultTokenTtlMinutes = 60;
    public const int MaxTokenTtlMinutes = 7 * 24 * 60;
    public const string DefaultRegion = "default";
    public const int MaxJobsPerPoll = 32;
    public const int MaxEventsPerBatch = 500;

    /// <summary><c>POST /v1/edge/enrollment-tokens</c> (API key): body <c>{ttlMinutes?, region?}</c>, may be empty → 201 with the token, shown once.</summary>
    public static Task<IResult> CreateEnrollmentTokenAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var body = http.Request.ContentLength is 0 or null && !http.Request.Headers.TransferEncoding.Any()
            ? new EdgeEnrollmentTokenRequest()
            : await JsonBody.ReadAsync<EdgeEnrollmentTokenRequest>(http.Request, http.RequestAborted);
        var ttl = body.TtlMinutes ?? DefaultTokenTtlMinutes;
        if (ttl < 1 || ttl > MaxTokenTtlMinutes)
        {
            throw Invalid("ttlMinutes", $"ttlMinutes must be from 1 to {MaxTokenTtlMinutes}");
        }

        ValidateRegion(body.Region);
        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        var tokens = http.RequestServices.GetRequiredService<EdgeEnrollmentTokenStore>();
        var (token, record) = await tokens.CreateAsync(tenant, body.Region, time.GetUtcNow().AddMinutes(ttl), http.RequestAborted);
        return RunEndpoints.Json(new EdgeEnrollmentTokenResponse(token, record.ExpiresAt, record.Region, MultiUse: true), StatusCodes.Status201Created);
    });

    /// <summary><c>POST /v1/edge/agents</c> (enrollment token) → 201 <see cref="EdgeEnrollResponse"/> with the agent token, shown once.</summary>
    public static Task<IResult> EnrollAgentAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var token = TenantAuth.BearerToken(http.Request);
        http.Response.Headers.WWWAuthenticate = "Bearer";
        if (token is null)
        {
            throw new SandstormException(ErrorCodes.Unauthorized, "an enrollment token is required: Authorization: Bearer <enrollment token>", StatusCodes.Status401Unauthorized);
        }

        var tokens = http.RequestServices.GetRequiredService<EdgeEnrollmentTokenStore>();
        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        var record = await tokens.FindAsync(token, http.RequestAborted)
            ?? throw new SandstormException(ErrorCodes.Unauthorized, "the enrollment token is not valid", StatusCodes.Status401Unauthorized);
        if (record.ExpiresAt <= time.GetUtcNow())
        {
            throw new SandstormException(
                ErrorCodes.TokenExpired,
                $"the enrollment token expired at {record.ExpiresAt:O}; create a new one with POST /v1/edge/enrollment-tokens",
                StatusCodes.Status401Unauthorized);
        }

        http.Response.Headers.Remove("WWW-Authenticate");
        var body = await JsonBody.ReadAsync<EdgeEnrollRequest>(http.Request, http.RequestAborted);
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(body.Name) || body.Name.Length > 100)
        {
            errors["name"] = ["name is required, at most 100 characters"];
        }

        if (body.Region is { } region && !RegionPattern().IsMatch(region))
        {
            errors["region"] = ["region is 1-64 letters, digits, '-' or '_'"];
        }
        else if (record.Region is { } fixedRegion && body.Region is { } asked && !string.Equals(fixedRegion, asked, StringComparison.OrdinalIgnoreCase))
        {
            errors["region"] = [$"the enrollment token is for region '{fixedRegion}', not '{asked}'"];
        }

        var labels = body.Labels ?? new Dictionary<string, string>();
        if (labels.Count > 32 || labels.Any(l => l.Key.Length is 0 or > 64 || l.Value.Length > 256))
        {
            errors["labels"] = ["at most 32 labels; keys 1-64 characters, values at most 256"];
        }

        if (errors.Count > 0)
        {
            throw new SandstormException(ErrorCodes.ValidationFailed, "the enrolment request is not valid", StatusCodes.Status400BadRequest, errors);
        }

        var agents = http.RequestServices.GetRequiredService<EdgeAgentStore>();
        var (agent, agentToken) = await agents.EnrollAsync(
            record.TenantId, body.Name.Trim(), record.Region ?? body.Region ?? DefaultRegion, labels, body.VpcMode, http.RequestAborted);
        return RunEndpoints.Json(new EdgeEnrollResponse(agent.AgentId, agentToken, agent.TenantId), StatusCodes.Status201Created);
    });

    /// <summary>
    /// <c>GET /v1/edge/agents</c> (API key): the tenant's agents with their last heartbeat (runtimes, load, jobs held) and
    /// whether they count as live (heartbeat within the agent timeout). Tokens are never shown.
    /// </summary>
    public static Task<IResult> ListAgentsAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var options = http.RequestServices.GetRequiredService<IOptions<EdgeOptions>>().Value;
        var now = http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        var list = await http.RequestServices.GetRequiredService<EdgeAgentStore>().ListAsync(tenant, http.RequestAborted);
        var agents = list
            .OrderBy(a => a.EnrolledAt)
            .Select(a => new
            {
                agentId = a.AgentId,
                name = a.Name,
                region = a.Region,
                labels = a.Labels,
                vpcMode = a.VpcMode,
                enrolledAt = a.EnrolledAt,
                lastHeartbeat = a.LastHeartbeat,
                live = a.IsLive(now, options.AgentTimeout),
                heartbeat = a.Heartbeat,
            });
        return RunEndpoints.Json(new { agents, deadAfterSeconds = (int)options.AgentTimeout.TotalSeconds }, StatusCodes.Status200OK);
    });

    /// <summary>
    /// <c>DELETE /v1/edge/agents/{agentId}</c> (API key): revokes the agent (its token stops working at once and nothing new
    /// is placed on it) → 204, or 404 when the tenant has no such agent.
    /// </summary>
    public static Task<IResult> RevokeAgentAsync(HttpContext http, string agentId) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var revoked = await http.RequestServices.GetRequiredService<EdgeAgentStore>().RevokeAsync(tenant, agentId, http.RequestAborted);
        return revoked ? Results.NoContent() : Problems.NotFound($"agent '{agentId}'");
    });

    /// <summary>
    /// <c>POST /v1/edge/agents/{agentId}/heartbeat</c> (agent token): capabilities, load and the jobs the agent holds →
    /// 200 <see cref="EdgeHeartbeatAck"/> naming the held jobs it must stop (cancelled runs, jobs moved or failed meanwhile)
    /// and the Falco alerts it is to match against its sandboxes (<see cref="EdgeQuarantineStore"/>).
    /// </summary>
    public static Task<IResult> HeartbeatAsync(HttpContext http, string agentId) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await EdgeAgentAuth.RequireAgentAsync(http, agentId);
        var heartbeat = await JsonBody.ReadAsync<EdgeHeartbeat>(http.Request, http.RequestAborted);
        if (heartbeat.Runtimes is null || heartbeat.Runtimes.Count > 32 || heartbeat.Runtimes.Any(r => string.IsNullOrWhiteSpace(r.Name))
            || heartbeat.MaxConcurrency is < 1 or > 1024 || heartbeat.QueueDepth < 0 || heartbeat.Cpu < 0 || heartbeat.MemoryMiB < 0)
        {
            throw Invalid("runtimes", "runtimes (at most 32, each named) are required; maxConcurrency is 1-1024; cpu, memoryMiB and queueDepth are not negative");
        }

        if (heartbeat.Jobs is { } held && (held.Count > EdgeJobLeases.MaxReported || held.Any(id => string.IsNullOrWhiteSpace(id) || id.Length > 256)))
        {
            throw Invalid("jobs", $"jobs lists at most {EdgeJobLeases.MaxReported} job ids, each 1-256 characters");
        }

        if (heartbeat.BootcImage is { } image && EdgeBootImage.Problem(image) is { } imageProblem)
        {
            throw Invalid("bootcImage", imageProblem);
        }

        var agents = http.RequestServices.GetRequiredService<EdgeAgentStore>();
        try
        {
            await agents.HeartbeatAsync(tenant, agentId, heartbeat, http.RequestAborted);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return Problems.NotFound($"agent '{agentId}'");
        }

        var options = http.RequestServices.GetRequiredService<IOptions<EdgeOptions>>().Value;
        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        var leases = http.RequestServices.GetRequiredService<EdgeJobLeases>();
        var cancel = await leases.JobsToCancelAsync(tenant, agentId, heartbeat.Jobs, http.RequestAborted);
        var quarantine = await http.RequestServices.GetRequiredService<EdgeQuarantineStore>().PendingAsync(tenant, agentId, http.RequestAborted);
        return RunEndpoints.Json(
            new EdgeHeartbeatAck(agentId, (int)options.AgentTimeout.TotalSeconds, time.GetUtcNow()) { Cancel = cancel, Quarantine = quarantine },
            StatusCodes.Status200OK);
    });

    /// <summary>
    /// <c>GET /v1/edge/agents/{agentId}/jobs?wait=25&amp;max=N</c> (agent token): leases up to N queued jobs of this agent,
    /// waiting up to <c>wait</c> seconds for one → 200 <see cref="EdgeJobBatch"/> (possibly empty).
    /// </summary>
    public static Task<IResult> PollJobsAsync(HttpContext http, string agentId) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await EdgeAgentAuth.RequireAgentAsync(http, agentId);
        var options = http.RequestServices.GetRequiredService<IOptions<EdgeOptions>>().Value;
        var wait = QueryInt(http.Request, "wait", 0, 0, options.MaxWaitSeconds);
        var max = QueryInt(http.Request, "max", 1, 1, MaxJobsPerPoll);
        var jobs = http.RequestServices.GetRequiredService<EdgeJobStore>();
        var payloads = http.RequestServices.GetRequiredService<PayloadStore>();
        var signal = http.RequestServices.GetRequiredService<EdgeJobSignal>();
        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        var until = time.GetUtcNow().AddSeconds(wait);
        var ct = http.RequestAborted;
        while (true)
        {
            var taken = new List<EdgeJob>();
            foreach (var job in (await jobs.ListForAgentAsync(tenant, agentId, EdgeJobState.Queued, ct)).OrderBy(j => j.CreatedAt).Take(max))
            {
                // An agent that hung up gets nothing leased: a job leased to nobody would wait for the sweeper or its run's deadline.
                ct.ThrowIfCancellationRequested();
                var leased = await jobs.TryUpdateAsync(job with { State = EdgeJobState.Leased, LeasedAt = time.GetUtcNow(), Attempts = job.Attempts + 1 }, CancellationToken.None);
                if (leased is null)
                {
                    continue; // Another poll (or the sweeper) changed it first.
                }

                var spec = JsonSerializer.Deserialize<ExecutionSpec>(await payloads.GetAsync(job.Spec, CancellationToken.None), SandstormJson.Options)!;
                taken.Add(new EdgeJob { JobId = job.JobId, RunId = job.RunId, Runtime = job.Runtime, Spec = spec, Deadline = job.Deadline, TraceParent = job.TraceParent });
            }

            var remaining = until - time.GetUtcNow();
            if (taken.Count > 0 || remaining <= TimeSpan.Zero)
            {
                return RunEndpoints.Json(new EdgeJobBatch(taken), StatusCodes.Status200OK);
            }

            await signal.WaitAsync(tenant, agentId, remaining < options.PollInterval ? remaining : options.PollInterval, time, ct);
        }
    });

    /// <summary>
    /// <c>POST /v1/edge/agents/{agentId}/jobs/{jobId}/result</c> (agent token): applies the result once and wakes the run →
    /// 200 <see cref="EdgeJobResultAck"/>; a re-post is acknowledged with <c>applied: false</c> and changes nothing.
    /// </summary>
    public static Task<IResult> PostJobResultAsync(HttpContext http, DurableTaskClient client, string agentId, string jobId) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await EdgeAgentAuth.RequireAgentAsync(http, agentId);
        var result = await JsonBody.ReadAsync<EdgeJobResult>(http.Request, http.RequestAborted);
        if (!string.Equals(result.JobId, jobId, StringComparison.Ordinal))
        {
            throw Invalid("jobId", $"the body's jobId '{result.JobId}' is not the route's '{jobId}'");
        }

        if ((result.Error is null) == (result.Result is null))
        {
            throw Invalid("result", "exactly one of result and error is required");
        }

        if (result.Error is { } error && (string.IsNullOrWhiteSpace(error.Code) || error.Message is null))
        {
            throw Invalid("error", "error needs a code and a message");
        }

        // Jobs are looked up in the agent's own tenant partition: another tenant's job id is simply not found.
        var jobs = http.RequestServices.GetRequiredService<EdgeJobStore>();
        var job = await jobs.GetAsync(tenant, jobId, http.RequestAborted);
        if (job is null)
        {
            return Problems.NotFound($"job '{jobId}'");
        }

        if (!job.Agents.Contains(agentId, StringComparer.Ordinal))
        {
            return Problems.Of(ErrorCodes.Forbidden, $"job '{jobId}' was never assigned to agent '{agentId}'", StatusCodes.Status403Forbidden);
        }

        var completion = http.RequestServices.GetRequiredService<EdgeJobCompletion>();

        // The agent's outbox re-posts until it gets a 2xx; finish the write even if it hangs up meanwhile.
        var applied = await completion.ApplyResultAsync(client, job, agentId, result, CancellationToken.None);
        return RunEndpoints.Json(new EdgeJobResultAck(jobId, applied), StatusCodes.Status200OK);
    });

    /// <summary><c>POST /v1/edge/agents/{agentId}/telemetry</c> (agent token): stores each event once → 202 <see cref="EdgeTelemetryAck"/>.</summary>
    public static Task<IResult> PostTelemetryAsync(HttpContext http, string agentId) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await EdgeAgentAuth.RequireAgentAsync(http, agentId);
        var batch = await JsonBody.ReadAsync<EdgeTelemetryBatch>(http.Request, http.RequestAborted);
        if (batch.Events is null || batch.Events.Count is 0 or > MaxEventsPerBatch)
        {
            throw Invalid("events", $"events holds 1 to {MaxEventsPerBatch} events");
        }

        if (batch.Events.Any(e => e is null || !EventIdPattern().IsMatch(e.EventId ?? "") || string.IsNullOrWhiteSpace(e.Kind) || e.Kind.Length > 64))
        {
            throw Invalid("events", "every event needs an eventId (1-128 of letters, digits, '.', '_', ':', '-') and a kind (1-64 characters)");
        }

        var store = http.RequestServices.GetRequiredService<EdgeTelemetryStore>();
        var (accepted, duplicates) = await store.AddAsync(tenant, agentId, batch.Events, CancellationToken.None);
        Telemetry.EdgeSamples.Publish(http.RequestServices.GetService<Telemetry.ITelemetrySink>(), tenant, agentId, batch.Events);
        return RunEndpoints.Json(new EdgeTelemetryAck(accepted, duplicates), StatusCodes.Status202Accepted);
    });

    private static void ValidateRegion(string? region)
    {
        if (region is not null && !RegionPattern().IsMatch(region))
        {
            throw Invalid("region", "region is 1-64 letters, digits, '-' or '_'");
        }
    }

    private static int QueryInt(HttpRequest request, string name, int fallback, int min, int max)
    {
        if (request.Query[name].FirstOrDefault() is not { } raw)
        {
            return fallback;
        }

        return int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw Invalid(name, $"{name} must be a whole number from {min} to {max}");
    }

    private static SandstormException Invalid(string field, string message) =>
        new(ErrorCodes.ValidationFailed, message, StatusCodes.Status400BadRequest, new Dictionary<string, string[]> { [field] = [message] });

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex RegionPattern();

    [GeneratedRegex("^[A-Za-z0-9._:-]{1,128}$")]
    private static partial Regex EventIdPattern();
}
