using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Validation;
using Sandstorm.Orchestrations;
using Sandstorm.Providers;
using Sandstorm.Storage;
using Sandstorm.Storage.Billing;

namespace Sandstorm.Api;

/// <summary>HTTP handlers of the public API, written once and mapped by both hosts (see <see cref="ApiRoutes"/>).</summary>
public static class RunEndpoints
{
    /// <summary><c>POST /v1/runs[?wait=N]</c></summary>
    public static Task<IResult> SubmitRunAsync(HttpContext http, DurableTaskClient client) => Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var wait = ParseWait(http.Request);
        var request = await JsonBody.ReadAsync<RunRequest>(http.Request, http.RequestAborted);
        var service = http.RequestServices.GetRequiredService<RunService>();
        var key = http.Request.Headers["Idempotency-Key"].FirstOrDefault();
        var (runId, created) = await service.SubmitAsync(client, tenant, request, key, http.RequestAborted, waiting: wait > TimeSpan.Zero);
        var location = $"/v1/runs/{runId}";
        if (wait > TimeSpan.Zero)
        {
            var result = await service.WaitAsync(tenant, runId, wait, http.RequestAborted, justCreated: created);
            if (result is { } done && done.Status.IsTerminal())
            {
                return Json(done, StatusCodes.Status200OK, location);
            }
        }

        var current = await service.GetAsync(tenant, runId, http.RequestAborted)
            ?? new RunResult { Id = runId, Status = RunStatus.Queued };
        return Json(current, current.Status.IsTerminal() ? StatusCodes.Status200OK : StatusCodes.Status202Accepted, location);
    });

    /// <summary><c>GET /v1/runs/{id}</c></summary>
    public static Task<IResult> GetRunAsync(HttpContext http, string id) => Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var service = http.RequestServices.GetRequiredService<RunService>();
        var result = await service.GetAsync(tenant, id, http.RequestAborted);
        return result is null ? Problems.NotFound($"run '{id}'") : Json(result, StatusCodes.Status200OK);
    });

    /// <summary>Most runs one list answers.</summary>
    public const int MaxRunsListed = 200;

    /// <summary>
    /// <c>GET /v1/runs?status=&amp;provider=&amp;since=&amp;limit=</c>: the tenant's runs, newest first, without outputs
    /// (<c>status</c> may list several, comma-separated; <c>since</c> defaults to 7 days ago; <c>limit</c> 1–200, default 50).
    /// </summary>
    public static Task<IResult> ListRunsAsync(HttpContext http) => Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var query = http.Request.Query;
        var statuses = new HashSet<RunStatus>();
        foreach (var name in (query["status"].FirstOrDefault() ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            statuses.Add(ParseStatus(name));
        }

        var provider = query["provider"].FirstOrDefault() is { Length: > 0 } p ? p : null;
        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        var since = ParseDate(http.Request, "since") ?? time.GetUtcNow().AddDays(-7);
        var limit = query["limit"].FirstOrDefault() is { } raw
            ? int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var l) && l is >= 1 and <= MaxRunsListed
                ? l
                : throw new SandstormException(ErrorCodes.ValidationFailed, $"limit is 1 to {MaxRunsListed}", 400,
                    new Dictionary<string, string[]> { ["limit"] = [$"limit is 1 to {MaxRunsListed}"] })
            : 50;
        var service = http.RequestServices.GetRequiredService<RunService>();
        var runs = await service.ListAsync(
            tenant,
            since,
            r => (statuses.Count == 0 || statuses.Contains(r.Status)) && (provider is null || string.Equals(r.Provider, provider, StringComparison.Ordinal)),
            limit,
            http.RequestAborted);
        return Json(new { runs }, StatusCodes.Status200OK);
    });

    /// <summary>
    /// <c>GET /v1/runs/{id}/events</c>: the run's states as Server-Sent Events (<c>queued</c>, <c>running</c> with its
    /// placement, <c>result</c> with its output), resumable with <c>Last-Event-ID</c>. A run's output arrives with its
    /// result: the Execute step returns it whole (kept sandboxes stream commands' output as it is printed).
    /// </summary>
    public static Task<IResult> GetRunEventsAsync(HttpContext http, string id) => Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var after = Sandboxes.ServerSentEvents.ResumeAfter(http.Request);
        var service = http.RequestServices.GetRequiredService<RunService>();
        return await service.GetAsync(tenant, id, http.RequestAborted) is null
            ? Problems.NotFound($"run '{id}'")
            : new RunEventStream(service.EventsAsync(tenant, id, after, http.RequestAborted));
    });

    private sealed class RunEventStream(IAsyncEnumerable<(long Id, string Name, RunResult Run)> events) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext) =>
            Sandboxes.ServerSentEvents.WriteAsync(
                httpContext,
                events,
                e => (e.Id, e.Name),
                (e, json) => System.Text.Json.JsonSerializer.Serialize(json, e.Run, SandstormJson.Options),
                httpContext.RequestAborted);
    }

    /// <summary><c>DELETE /v1/runs/{id}</c>: cancels a run that has not finished.</summary>
    public static Task<IResult> CancelRunAsync(HttpContext http, DurableTaskClient client, string id) => Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var service = http.RequestServices.GetRequiredService<RunService>();
        return await service.CancelAsync(client, tenant, id, "cancelled by the caller", http.RequestAborted) switch
        {
            null => Problems.NotFound($"run '{id}'"),
            false => Problems.Of(ErrorCodes.Conflict, $"run '{id}' has already finished", StatusCodes.Status409Conflict),
            true => Json(new { id, status = "cancelling" }, StatusCodes.Status202Accepted, $"/v1/runs/{id}"),
        };
    });

    /// <summary><c>POST /v1/sandboxes/run</c>: the v1 SDK's synchronous call.</summary>
    public static Task<IResult> RunSandboxAsync(HttpContext http, DurableTaskClient client) => Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var body = await JsonBody.ReadAsync<SandboxRunRequest>(http.Request, http.RequestAborted);
        if (body.Spec is null)
        {
            throw new SandstormException(ErrorCodes.ValidationFailed, "spec is required", 400, new Dictionary<string, string[]> { ["spec"] = ["spec is required"] });
        }

        if (body.Constraints is not null && body.Spec.Constraints is not null)
        {
            throw new SandstormException(ErrorCodes.ValidationFailed, "constraints are given twice (in spec and beside it); give them once", 400,
                new Dictionary<string, string[]> { ["spec.constraints"] = ["give constraints beside spec (as the v1 SDK does) or in it, not both"] });
        }

        // Canonical before submitting: the wait below needs the timeout the run really has (constraints.timeout is an alias).
        var request = RunRequestValidator.Normalize(body.Constraints is null ? body.Spec : body.Spec with { Constraints = body.Constraints });
        var service = http.RequestServices.GetRequiredService<RunService>();
        var key = http.Request.Headers["Idempotency-Key"].FirstOrDefault();
        var (runId, created) = await service.SubmitAsync(client, tenant, request, key, http.RequestAborted, waiting: true);
        var result = await service.WaitAsync(tenant, runId, service.SettleBudget(request.Timeout), http.RequestAborted, justCreated: created);
        return result is { } done && done.Status.IsTerminal()
            ? Json(SandboxResult.From(done), StatusCodes.Status200OK)
            : Json(new { id = runId, status = result?.Status ?? RunStatus.Queued }, StatusCodes.Status202Accepted, $"/v1/runs/{runId}");
    });

    /// <summary><c>GET /v1/health</c> (no credential).</summary>
    public static IResult Health() => Json(new { status = "ok" }, StatusCodes.Status200OK);

    /// <summary>
    /// <c>GET /v1/usage?from=&amp;to=</c> (or the v1 SDK's <c>start</c>/<c>end</c>): the tenant's billed runs settled in
    /// [from, to), default the last 30 days. The v2 fields (<c>runs</c>, <c>total</c>, <c>providers</c>, <c>totals</c> with each
    /// tier's fees, Autopilot's baseline and savings, grams of CO₂e; <c>tiers</c>: runs and fees per security tier;
    /// <c>days</c>: runs, spend, fees and savings per UTC day and provider) and the v1 SDK's (<c>totalRuns</c>, <c>totalCost</c>,
    /// <c>avgLatency</c> in ms, <c>providerBreakdown</c>: runs per provider) side by side.
    /// </summary>
    public static Task<IResult> GetUsageAsync(HttpContext http) => Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        var (from, to) = UsageRange(http.Request, time.GetUtcNow());
        var ledger = http.RequestServices.GetRequiredService<LedgerStore>();
        var rows = new List<LedgerEntry>();
        await foreach (var e in ledger.QueryAsync(tenant, from, to, http.RequestAborted))
        {
            rows.Add(e);
        }

        var report = UsageCalculator.Compute(rows);
        var totals = report.Totals;
        return Json(
            new
            {
                tenant,
                from,
                to,
                runs = totals.Runs,
                total = totals.Total,
                providers = report.Providers.Select(p => new
                {
                    provider = p.Provider,
                    runs = p.Totals.Runs,
                    providerCost = p.Totals.ProviderCost,
                    fees = p.Totals.Fees,
                    total = p.Totals.Total,
                    autopilotFees = p.Totals.AutopilotFees,
                    shieldFees = p.Totals.ShieldFees,
                    baselineCost = p.Totals.BaselineCost,
                    savings = p.Totals.Savings,
                    carbonGrams = p.Totals.CarbonGrams,
                }),
                totals,
                tiers = report.Tiers,
                days = rows
                    .GroupBy(r => (Day: r.SettledAt.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), r.Provider))
                    .OrderBy(g => g.Key.Day, StringComparer.Ordinal)
                    .ThenBy(g => g.Key.Provider, StringComparer.Ordinal)
                    .Select(g => new
                    {
                        day = g.Key.Day,
                        provider = g.Key.Provider,
                        runs = g.Count(),
                        total = g.Sum(r => r.Total),
                        fees = g.Sum(r => r.Fees),
                        savings = g.Sum(r => r.Savings),
                    }),
                totalRuns = totals.Runs,
                totalCost = totals.Total,
                avgLatency = rows.Count == 0 ? 0 : Math.Round(rows.Average(r => (double)r.LatencyMs), 1),
                providerBreakdown = report.Providers.ToDictionary(p => p.Provider, p => p.Totals.Runs, StringComparer.Ordinal),
            },
            StatusCodes.Status200OK);
    });

    /// <summary>
    /// The period of a usage query: <c>from</c>/<c>to</c> or the v1 SDK's <c>start</c>/<c>end</c> (ISO 8601), never a mix of
    /// the two pairs, and never a start after its end; each refusal names the field.
    /// </summary>
    public static (DateTimeOffset From, DateTimeOffset To) UsageRange(HttpRequest request, DateTimeOffset now)
    {
        var v2 = request.Query.ContainsKey("from") || request.Query.ContainsKey("to");
        var v1 = request.Query.ContainsKey("start") || request.Query.ContainsKey("end");
        if (v1 && v2)
        {
            var field = request.Query.ContainsKey("start") ? "start" : "end";
            throw new SandstormException(ErrorCodes.ValidationFailed, "give from/to or start/end (the v1 SDK's names), not both", 400,
                new Dictionary<string, string[]> { [field] = ["start/end and from/to name the same period: use one pair"] });
        }

        var (fromName, toName) = v1 ? ("start", "end") : ("from", "to");
        var to = ParseDate(request, toName) ?? now.AddMinutes(1);
        var from = ParseDate(request, fromName) ?? to.AddDays(-30);
        if (from > to)
        {
            throw new SandstormException(ErrorCodes.ValidationFailed, $"{fromName} ({from:O}) is after {toName} ({to:O})", 400,
                new Dictionary<string, string[]> { [fromName] = [$"{fromName} must not be after {toName}"] });
        }

        return (from, to);
    }

    /// <summary>
    /// The v1 SDK's snapshot calls (<c>POST /v1/sandboxes/{id}/snapshot</c>, <c>POST /v1/snapshots/{id}/restore</c>,
    /// <c>GET /v1/snapshots</c>): 501 <c>not-supported</c> until snapshots of kept sandboxes exist. Nothing is stored.
    /// </summary>
    public static Task<IResult> SnapshotsNotSupportedAsync(HttpContext http) => Guard(http, async () =>
    {
        await TenantAuth.RequireTenantAsync(http);
        return Problems.Of(
            ErrorCodes.NotSupported,
            "snapshots are not supported yet: a snapshot (files and installed state) needs a sandbox that outlives its run, "
                + "and restoring needs a new one; until kept sandboxes have them, nothing is snapshotted or restored",
            StatusCodes.Status501NotImplemented);
    });

    /// <summary><c>GET /v1/providers</c>: what each provider offers this tenant, and its health.</summary>
    public static Task<IResult> GetProvidersAsync(HttpContext http) => Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var catalog = http.RequestServices.GetRequiredService<IProviderCatalog>();
        var list = new List<object>();
        foreach (var provider in catalog.All)
        {
            if (await provider.GetCapabilitiesAsync(tenant, http.RequestAborted) is { } c)
            {
                list.Add(new { capabilities = c, health = catalog.Health(c.Provider) });
            }
        }

        return Json(new { providers = list }, StatusCodes.Status200OK);
    });

    /// <summary>
    /// Runs a handler, turning Sandstorm errors into problem+json. Anything else is a bug or an outage of a dependency:
    /// it is logged with the request's trace id and answered as an <c>internal-error</c> problem naming that id, never
    /// as a bare 500.
    /// </summary>
    public static async Task<IResult> Guard(HttpContext http, Func<Task<IResult>> handler)
    {
        try
        {
            return await handler();
        }
        catch (SandstormException e)
        {
            return Problems.From(e);
        }
        catch (Exception e) when (!(e is OperationCanceledException && http.RequestAborted.IsCancellationRequested))
        {
            http.RequestServices.GetService<ILoggerFactory>()?.CreateLogger("Sandstorm.Api")
                .LogError(e, "Unhandled error on {Method} {Path} (trace {TraceId})", http.Request.Method, http.Request.Path, http.TraceIdentifier);
            return Problems.Of(ErrorCodes.Internal, $"internal error (trace {http.TraceIdentifier}); the details are in the server log", StatusCodes.Status500InternalServerError);
        }
    }

    public static IResult Json(object value, int status, string? location = null) =>
        new JsonResult(value, status, location);

    private static TimeSpan ParseWait(HttpRequest request)
    {
        if (request.Query["wait"].FirstOrDefault() is not { } raw)
        {
            return TimeSpan.Zero;
        }

        if (!double.TryParse(raw, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || seconds < 0 || seconds > RunService.MaxWait.TotalSeconds)
        {
            throw new SandstormException(ErrorCodes.ValidationFailed, $"wait must be a number of seconds between 0 and {RunService.MaxWait.TotalSeconds}");
        }

        return TimeSpan.FromSeconds(seconds);
    }

    private static RunStatus ParseStatus(string name)
    {
        foreach (var status in Enum.GetValues<RunStatus>())
        {
            if (string.Equals(System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(status.ToString()), name, StringComparison.Ordinal))
            {
                return status;
            }
        }

        throw new SandstormException(ErrorCodes.ValidationFailed, $"'{name}' is not a run status", 400,
            new Dictionary<string, string[]> { ["status"] = [$"status is one or more of: {string.Join(", ", Enum.GetValues<RunStatus>().Select(s => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(s.ToString())))}"] });
    }

    private static DateTimeOffset? ParseDate(HttpRequest request, string name)
    {
        if (request.Query[name].FirstOrDefault() is not { } raw)
        {
            return null;
        }

        return DateTimeOffset.TryParse(raw, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value)
            ? value
            : throw new SandstormException(ErrorCodes.ValidationFailed, $"{name} must be an ISO 8601 date", 400,
                new Dictionary<string, string[]> { [name] = [$"'{raw}' is not an ISO 8601 date"] });
    }

    /// <summary>Writes JSON with Sandstorm's options, a status and an optional Location.</summary>
    private sealed class JsonResult(object value, int status, string? location) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = status;
            if (location is not null)
            {
                httpContext.Response.Headers.Location = location;
            }

            return httpContext.Response.WriteAsJsonAsync(value, value.GetType(), SandstormJson.Options, "application/json", httpContext.RequestAborted);
        }
    }
}
