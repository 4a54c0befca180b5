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
    public const int DefaultTokenTtlMinutes = 15;
    public const int MaxTokenTtlMinutes = 24 * 60;
    public const int MaxTokenUses = 100;

    /// <summary>Most enrollment tokens a tenant may hold that can still enrol an agent (revoke one to make another).</summary>
    public const int MaxActiveTokens = 20;

    /// <summary>Most tokens <c>GET /v1/edge/enrollment-tokens</c> lists (newest first).</summary>
    public const int MaxListedTokens = 100;

    public const string DefaultRegion = "default";
    public const int MaxJobsPerPoll = 32;
    public const int MaxEventsPerBatch = 500;

    /// <summary>
    /// <c>POST /v1/edge/enrollment-tokens</c> (API key): body <c>{ttlMinutes?, region?, maxUses?}</c>, may be empty → 201
    /// with the token, shown once. Single-use unless <c>maxUses</c> says more; 409 when the tenant already holds
    /// <see cref="MaxActiveTokens"/> tokens that can still enrol.
    /// </summary>
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

        var maxUses = body.MaxUses ?? 1;
        if (maxUses < 1 || maxUses > MaxTokenUses)
        {
            throw Invalid("maxUses", $"maxUses must be from 1 to {MaxTokenUses}");
        }

        ValidateRegion(body.Region);
        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        var tokens = http.RequestServices.GetRequiredService<EdgeEnrollmentTokenStore>();
        if (await tokens.CountActiveAsync(tenant, http.RequestAborted) >= MaxActiveTokens)
        {
            return Problems.Of(
                ErrorCodes.Conflict,
                $"the tenant already holds {MaxActiveTokens} enrollment tokens that can still enrol an agent; revoke one (DELETE /v1/edge/enrollment-tokens/{{id}}) or let it expire",
                StatusCodes.Status409Conflict);
        }

        var (token, record) = await tokens.CreateAsync(tenant, body.Region, time.GetUtcNow().AddMinutes(ttl), maxUses, http.RequestAborted);
        return RunEndpoints.Json(
            new EdgeEnrollmentTokenResponse(token, record.ExpiresAt, record.Region, MultiUse: maxUses > 1) { Id = record.TokenId, MaxUses = maxUses },
            StatusCodes.Status201Created);
    });

    /// <summary><c>GET /v1/edge/enrollment-tokens</c> (API key): the tenant's enrollment tokens, newest first, with their state and uses (never the token).</summary>
    public static Task<IResult> ListEnrollmentTokensAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var now = http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        var list = await http.RequestServices.GetRequiredService<EdgeEnrollmentTokenStore>().ListAsync(tenant, MaxListedTokens, http.RequestAborted);
        return RunEndpoints.Json(new EdgeEnrollmentTokenList([.. list.Select(t => InfoOf(t, now))]), StatusCodes.Status200OK);
    });

    /// <summary>
    /// <c>DELETE /v1/edge/enrollment-tokens/{tokenId}</c> (API key): the token enrols nobody from now on → 204 (again for a
    /// revoked one); 404 when the tenant has no such token; 400 for an id that is not a token id. Agents it already
    /// enrolled keep working (revoke those with <c>DELETE /v1/edge/agents/{agentId}</c>).
    /// </summary>
    public static Task<IResult> RevokeEnrollmentTokenAsync(HttpContext http, string tokenId) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        if (!TokenIdPattern().IsMatch(tokenId))
        {
            throw Invalid("tokenId", "a token id is 'ent_' and 16 hex digits, as POST and GET /v1/edge/enrollment-tokens show it");
        }

        var revoked = await http.RequestServices.GetRequiredService<EdgeEnrollmentTokenStore>().RevokeAsync(tenant, tokenId, http.RequestAborted);
        return revoked is null ? Problems.NotFound($"enrollment token '{tokenId}'") : Results.NoContent();
    });

    /// <summary>
    /// <c>POST /v1/edge/agents</c> (enrollment token) → 201 <see cref="EdgeEnrollResponse"/> with the agent token, shown once.
    /// An unknown, revoked, expired or used-up token is a 401 problem with its own type.
    /// </summary>
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
        var found = await tokens.FindAsync(token, http.RequestAborted);
        var record = Usable(found, found?.StateAt(time.GetUtcNow()) ?? EdgeEnrollmentTokenState.Unknown);

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

        // The use is taken only for a valid request (a typo does not burn a single-use token), and conditionally, so two
        // enrolments racing for the last use cannot both get it.
        var (used, state) = await tokens.UseAsync(token, http.RequestAborted);
        Usable(used, state);
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
                token = TokenOf(a),
            });
        return RunEndpoints.Json(new { agents, deadAfterSeconds = (int)options.AgentTimeout.TotalSeconds }, StatusCodes.Status200OK);
    });

    /// <summary>
    /// <c>POST /v1/edge/agents/{agentId}/rotate</c> (API key): issues the agent a new token, shown once, and every earlier
    /// token of the agent is refused from then on → 200 <see cref="EdgeAgentTokenResponse"/>; 404 when the tenant has no
    /// such agent. The agent is given the new token with <c>sandstorm-edge init --agent-token-file</c>.
    /// </summary>
    public static Task<IResult> RotateAgentTokenAsync(HttpContext http, string agentId) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        if (!AgentIdPattern().IsMatch(agentId))
        {
            throw Invalid("agentId", "an agent id is 'agt_' and 16 hex digits, as GET /v1/edge/agents shows it");
        }

        var rotated = await http.RequestServices.GetRequiredService<EdgeAgentStore>().RotateTokenAsync(tenant, agentId, http.RequestAborted);
        return rotated is { } r
            ? RunEndpoints.Json(new EdgeAgentTokenResponse(agentId, r.Token, r.Agent.TokenId!, r.Agent.TokenIssuedAt!.Value), StatusCodes.Status200OK)
            : Problems.NotFound($"agent '{agentId}'");
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

        if (!EdgeJobCompletion.HeldBy(job, agentId))
        {
            return LeaseLost(job, agentId);
        }

        var completion = http.RequestServices.GetRequiredService<EdgeJobCompletion>();
        if (result.Result is { } executed)
        {
            var agent = await http.RequestServices.GetRequiredService<EdgeAgentStore>().GetAsync(tenant, agentId, http.RequestAborted);
            var got = IsolationOf(executed.Runtime, result.Isolation, agent);
            if (got is null || got < job.IsolationLevel)
            {
                // Refused, and the run fails with the reason: a weaker sandbox than asked for is never a success.
                var why = $"edge agent {agentId} ran job {jobId} under runtime '{executed.Runtime}' (isolation '{Level(got)}'), "
                    + $"below the required '{Level(job.IsolationLevel)}'; its result was refused";
                var refused = await completion.RefuseResultAsync(client, job, agentId, new RunError(ErrorCodes.IsolationBelowRequired, why), CancellationToken.None);
                return refused == EdgeResultOutcome.LeaseLost
                    ? LeaseLost(job, agentId)
                    : Problems.Of(ErrorCodes.IsolationBelowRequired, why, StatusCodes.Status422UnprocessableEntity);
            }

            result = result with { Result = executed with { Isolation = got } };
        }

        // The agent's outbox re-posts until it gets a 2xx; finish the write even if it hangs up meanwhile.
        var outcome = await completion.ApplyResultAsync(client, job, agentId, result, CancellationToken.None);
        return outcome == EdgeResultOutcome.LeaseLost
            ? LeaseLost(job, agentId)
            : RunEndpoints.Json(new EdgeJobResultAck(jobId, outcome == EdgeResultOutcome.Applied), StatusCodes.Status200OK);
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

    /// <summary>
    /// The isolation an edge execution had: the weakest of what the agent reports with the result (or, from agents that do
    /// not, what its last heartbeat advertised for that runtime) and what the control plane knows the runtime to give. Null
    /// when nobody says (an unknown runtime the agent never advertised): not proven, so refused.
    /// </summary>
    public static IsolationLevel? IsolationOf(string runtime, IsolationLevel? reported, EdgeAgentRecord? agent)
    {
        var claimed = reported
            ?? agent?.Heartbeat?.Runtimes.FirstOrDefault(r => string.Equals(r.Name, runtime, StringComparison.OrdinalIgnoreCase))?.Isolation;
        var known = EdgeProvider.KnownIsolation(runtime);
        return (claimed, known) switch
        {
            ({ } c, { } k) => c < k ? c : k,
            ({ } c, null) => c,
            _ => null,
        };
    }

    private static string Level(IsolationLevel? level) => level?.ToString().ToLowerInvariant() ?? "unknown";

    private static IResult LeaseLost(EdgeJobRecord job, string agentId) => Problems.Of(
        ErrorCodes.LeaseLost,
        job.State == EdgeJobState.Completed
            ? $"agent '{agentId}' no longer holds job '{job.JobId}': it was completed by '{job.CompletedBy}'; this result changes nothing"
            : $"agent '{agentId}' no longer holds job '{job.JobId}': its lease expired and the job went to another agent; this result changes nothing",
        StatusCodes.Status409Conflict);

    // The token when it can enrol an agent; else the 401 problem that says why.
    private static EdgeEnrollmentToken Usable(EdgeEnrollmentToken? record, EdgeEnrollmentTokenState state) =>
        state switch
        {
            EdgeEnrollmentTokenState.Active when record is not null => record,
            EdgeEnrollmentTokenState.Revoked => throw new SandstormException(
                ErrorCodes.TokenRevoked, $"the enrollment token {record!.TokenId} was revoked; create a new one with POST /v1/edge/enrollment-tokens", StatusCodes.Status401Unauthorized),
            EdgeEnrollmentTokenState.Expired => throw new SandstormException(
                ErrorCodes.TokenExpired, $"the enrollment token expired at {record!.ExpiresAt:O}; create a new one with POST /v1/edge/enrollment-tokens", StatusCodes.Status401Unauthorized),
            EdgeEnrollmentTokenState.UsedUp => throw new SandstormException(
                ErrorCodes.TokenUsed,
                $"the enrollment token {record!.TokenId} has enrolled the {record.MaxUses} agent(s) it may; create a new one with POST /v1/edge/enrollment-tokens",
                StatusCodes.Status401Unauthorized),
            _ => throw new SandstormException(ErrorCodes.Unauthorized, "the enrollment token is not valid", StatusCodes.Status401Unauthorized),
        };

    private static EdgeEnrollmentTokenInfo InfoOf(EdgeEnrollmentToken t, DateTimeOffset now) => new()
    {
        Id = t.TokenId,
        Region = t.Region,
        CreatedAt = t.CreatedAt,
        ExpiresAt = t.ExpiresAt,
        MaxUses = t.MaxUses,
        Uses = t.Uses,
        LastUsedAt = t.LastUsedAt,
        RevokedAt = t.RevokedAt,
        State = t.StateAt(now) switch
        {
            EdgeEnrollmentTokenState.Revoked => "revoked",
            EdgeEnrollmentTokenState.Expired => "expired",
            EdgeEnrollmentTokenState.UsedUp => "used",
            _ => "active",
        },
    };

    private static object? TokenOf(EdgeAgentRecord a) =>
        a.TokenId is null ? null : new { id = a.TokenId, issuedAt = a.TokenIssuedAt, rotations = a.TokenRotations };

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

    [GeneratedRegex("^ent_[0-9a-f]{16}$")]
    private static partial Regex TokenIdPattern();

    [GeneratedRegex("^agt_[0-9a-f]{16}$")]
    private static partial Regex AgentIdPattern();
}
