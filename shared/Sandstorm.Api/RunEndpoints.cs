using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Orchestrations;
using Sandstorm.Providers;
using Sandstorm.Storage;

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

        var request = body.Constraints is null ? body.Spec : body.Spec with { Constraints = body.Constraints };
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

    /// <summary><c>GET /v1/usage?from=&amp;to=</c>: the tenant's billed runs and totals.</summary>
    public static Task<IResult> GetUsageAsync(HttpContext http) => Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        var to = ParseDate(http.Request, "to") ?? time.GetUtcNow().AddMinutes(1);
        var from = ParseDate(http.Request, "from") ?? to.AddDays(-30);
        var ledger = http.RequestServices.GetRequiredService<LedgerStore>();
        var byProvider = new Dictionary<string, (int Runs, decimal Provider, decimal Fees, decimal Total)>();
        await foreach (var e in ledger.QueryAsync(tenant, from, to, http.RequestAborted))
        {
            var acc = byProvider.GetValueOrDefault(e.Provider);
            byProvider[e.Provider] = (acc.Runs + 1, acc.Provider + e.ProviderCost, acc.Fees + e.Fees, acc.Total + e.Total);
        }

        return Json(
            new
            {
                tenant,
                from,
                to,
                runs = byProvider.Values.Sum(v => v.Runs),
                total = byProvider.Values.Sum(v => v.Total),
                providers = byProvider.Select(p => new { provider = p.Key, runs = p.Value.Runs, providerCost = p.Value.Provider, fees = p.Value.Fees, total = p.Value.Total }),
            },
            StatusCodes.Status200OK);
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

    private static DateTimeOffset? ParseDate(HttpRequest request, string name)
    {
        if (request.Query[name].FirstOrDefault() is not { } raw)
        {
            return null;
        }

        return DateTimeOffset.TryParse(raw, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value)
            ? value
            : throw new SandstormException(ErrorCodes.ValidationFailed, $"{name} must be an ISO 8601 date");
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
