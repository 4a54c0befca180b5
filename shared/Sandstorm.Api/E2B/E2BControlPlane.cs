using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Api.Sandboxes;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Storage;
using Sandstorm.Storage.Sandboxes;

namespace Sandstorm.Api.E2B;

/// <summary>
/// E2B's control plane, as the official <c>e2b</c> SDK (2.x) calls it, translated into <see cref="SandboxService"/>: an agent
/// written for E2B moves to Sandstorm by pointing <c>E2B_API_URL</c> and <c>E2B_SANDBOX_URL</c> at the host and using a
/// Sandstorm API key as <c>E2B_API_KEY</c>. Sandstorm's intent rides in the sandbox's metadata (<c>sandstorm.isolation</c>,
/// <c>sandstorm.strategy</c>, <c>sandstorm.securityTier</c>, <c>sandstorm.maxCost</c>, <c>sandstorm.region</c>,
/// <c>sandstorm.runtime</c>); without it the defaults apply. Errors are E2B's <c>{"code": status, "message"}</c>.
/// </summary>
public static class E2BControlPlane
{
    /// <summary>The envd version reported: the features of 0.5.7 are served (CloseStdin, octet-stream and gzip uploads), file metadata (0.6.2) is not.</summary>
    public const string EnvdVersion = "0.5.7";

    public const string ClientId = "sandstorm";

    private const string DefaultTemplate = "base";

    /// <summary><c>POST /sandboxes</c>, <c>POST /v2/sandboxes</c> → 201 with the sandbox id, envd version and access token.</summary>
    public static Task<IResult> CreateAsync(HttpContext http, DurableTaskClient client) => Guard(http, async () =>
    {
        var tenant = await RequireTenantAsync(http);
        var body = await ReadAsync<NewSandbox>(http);
        if (body.Extra is { Count: > 0 } extra)
        {
            throw new SandstormException(ErrorCodes.NotSupported, $"not supported by Sandstorm: {string.Join(", ", extra.Keys)}", 400);
        }

        if (body.AllowInternetAccess == true)
        {
            throw new SandstormException(ErrorCodes.NotSupported, "Sandstorm sandboxes have no network: allow_internet_access cannot be true", 400);
        }

        if (body.AutoPause == true)
        {
            throw new SandstormException(ErrorCodes.NotSupported, "pausing sandboxes is not supported by Sandstorm: autoPause cannot be true", 400);
        }

        var request = Intent(body.Metadata) with
        {
            Template = body.TemplateId ?? DefaultTemplate,
            Metadata = body.Metadata,
            EnvVars = body.EnvVars,
            Timeout = body.Timeout ?? Sandstorm.Core.Validation.SandboxRequestValidator.DefaultLifetimeSeconds,
        };
        var (sandbox, token) = await Service(http).CreateAsync(client, tenant, request, http.RequestAborted);
        return Json(Created(sandbox.Id, request.Template!, token), StatusCodes.Status201Created);
    });

    /// <summary><c>POST /v2/sandboxes/{id}/connect</c> <c>{timeout?}</c>: the running sandbox (its lifetime extended, never shortened) → 200.</summary>
    public static Task<IResult> ConnectAsync(HttpContext http, DurableTaskClient client, string id) => Guard(http, async () =>
    {
        var tenant = await RequireTenantAsync(http);
        var body = http.Request.ContentLength is 0 ? new TimeoutBody(null) : await ReadAsync<TimeoutBody>(http);
        var record = await Service(http).RecordAsync(tenant, id, http.RequestAborted) ?? throw NotFound(id);
        if (record.IsOver)
        {
            throw NotFound(id);
        }

        if (body.Timeout is { } seconds && DateTimeOffset.UtcNow.AddSeconds(seconds) > record.ExpiresAt)
        {
            await Service(http).SetTimeoutAsync(client, tenant, id, seconds, http.RequestAborted);
        }

        return Json(Created(record.SandboxId, record.Request.Template ?? DefaultTemplate, record.AccessToken!), StatusCodes.Status200OK);
    });

    /// <summary><c>GET /sandboxes/{id}</c> → the sandbox in E2B's detail shape, with its access token.</summary>
    public static Task<IResult> GetAsync(HttpContext http, string id) => Guard(http, async () =>
    {
        var tenant = await RequireTenantAsync(http);
        var record = await Service(http).RecordAsync(tenant, id, http.RequestAborted);
        return record is null || record.IsOver ? throw NotFound(id) : Json(Detail(record, withToken: true), StatusCodes.Status200OK);
    });

    /// <summary><c>GET /v2/sandboxes?metadata=&amp;state=&amp;limit=&amp;nextToken=</c> (and the older <c>GET /sandboxes</c>) → running sandboxes.</summary>
    public static Task<IResult> ListAsync(HttpContext http) => Guard(http, async () =>
    {
        var tenant = await RequireTenantAsync(http);
        var query = http.Request.Query;
        var states = (query["state"].FirstOrDefault() ?? "running,paused").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (states.Any(s => s is not ("running" or "paused")))
        {
            throw new SandstormException(ErrorCodes.ValidationFailed, "state is a comma-separated list of running and paused", 400);
        }

        var limit = query["limit"].FirstOrDefault() is { } raw
            ? int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var l) && l is >= 1 and <= 100 ? l : throw new SandstormException(ErrorCodes.ValidationFailed, "limit is 1 to 100", 400)
            : 100;
        var metadata = query["metadata"].FirstOrDefault() is { } filter ? Metadata(filter) : new Dictionary<string, string>();
        var next = query["nextToken"].FirstOrDefault() is { Length: > 0 } token ? FromToken(token) : null;
        if (!states.Contains("running"))
        {
            // Sandstorm never pauses a sandbox: nothing is paused.
            return Json(Array.Empty<object>(), StatusCodes.Status200OK);
        }

        var service = Service(http);
        var (items, following) = await service.ListAsync(tenant, metadata, liveOnly: true, limit, next, http.RequestAborted);
        var records = new List<object>();
        foreach (var item in items)
        {
            if (await service.RecordAsync(tenant, item.Id, http.RequestAborted) is { } record)
            {
                records.Add(Detail(record, withToken: false));
            }
        }

        if (following is not null)
        {
            http.Response.Headers["X-Next-Token"] = ToToken(following);
        }

        return Json(records, StatusCodes.Status200OK);
    });

    /// <summary><c>DELETE /sandboxes/{id}</c> → 204 (404 when it is not running).</summary>
    public static Task<IResult> KillAsync(HttpContext http, DurableTaskClient client, string id) => Guard(http, async () =>
    {
        var tenant = await RequireTenantAsync(http);
        return await Service(http).EndAsync(client, tenant, id, SandboxStatus.Stopped, http.RequestAborted) is true
            ? Results.NoContent()
            : throw NotFound(id);
    });

    /// <summary><c>POST /sandboxes/{id}/timeout</c> <c>{timeout}</c>: the lifetime from now, longer or shorter → 204.</summary>
    public static Task<IResult> SetTimeoutAsync(HttpContext http, DurableTaskClient client, string id) => Guard(http, async () =>
    {
        var tenant = await RequireTenantAsync(http);
        var body = await ReadAsync<TimeoutBody>(http);
        if (await Service(http).RecordAsync(tenant, id, http.RequestAborted) is not { } record || record.IsOver)
        {
            throw NotFound(id);
        }

        await Service(http).SetTimeoutAsync(client, tenant, id, body.Timeout ?? throw new SandstormException(ErrorCodes.ValidationFailed, "timeout is required", 400), http.RequestAborted);
        return Results.NoContent();
    });

    /// <summary><c>POST /sandboxes/{id}/pause</c>, <c>.../resume</c>, metrics, snapshots: answered "not supported", clearly.</summary>
    public static Task<IResult> NotSupportedAsync(HttpContext http, string id) => Guard(http, async () =>
    {
        var tenant = await RequireTenantAsync(http);
        _ = await Service(http).RecordAsync(tenant, id, http.RequestAborted) ?? throw NotFound(id);
        throw new SandstormException(ErrorCodes.NotSupported, $"{http.Request.Method} {http.Request.Path} is not supported by Sandstorm (sandboxes run until they end; they are not paused)", 501);
    });

    /// <summary>Runs a handler, answering errors in E2B's shape: <c>{"code": status, "message": "..."}</c>.</summary>
    public static Task<IResult> Guard(HttpContext http, Func<Task<IResult>> handler) => RunEndpoints.Guard(http, async () =>
    {
        try
        {
            return await handler();
        }
        catch (SandstormException e)
        {
            return Error(e.Status, e.Message, e.RetryAfter);
        }
    });

    /// <summary>An error in E2B's control-plane and envd REST shape: <c>{"code": status, "message"}</c>.</summary>
    public static IResult Error(int status, string message, TimeSpan? retryAfter = null) =>
        new E2BError(status, message, retryAfter is { } after ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)).ToString(CultureInfo.InvariantCulture) : "");

    /// <summary>The tenant of the <c>X-API-KEY</c> header (E2B's SDK sends no Authorization header to the control plane).</summary>
    public static async Task<string> RequireTenantAsync(HttpContext http)
    {
        var key = http.Request.Headers["X-API-KEY"].FirstOrDefault();
        if (string.IsNullOrEmpty(key))
        {
            throw new SandstormException(ErrorCodes.Unauthorized, "an API key is required: X-API-KEY (E2B_API_KEY) is a Sandstorm API key", 401);
        }

        return await http.RequestServices.GetRequiredService<ApiKeyStore>().ResolveAsync(key, http.RequestAborted)
            ?? throw new SandstormException(ErrorCodes.Unauthorized, "the API key is not valid", 401);
    }

    /// <summary>Sandstorm's intent from E2B metadata (keys <c>sandstorm.*</c>); refused clearly when a value is not understood.</summary>
    public static SandboxCreateRequest Intent(IReadOnlyDictionary<string, string>? metadata)
    {
        var request = new SandboxCreateRequest();
        if (metadata is null)
        {
            return request;
        }

        T Parse<T>(string key, string value)
            where T : struct, Enum
        {
            try
            {
                return JsonSerializer.Deserialize<T>($"\"{value}\"", SandstormJson.Options);
            }
            catch (JsonException)
            {
                throw new SandstormException(ErrorCodes.ValidationFailed, $"metadata '{key}' is not a valid value: '{value}'", 400);
            }
        }

        var constraints = new RunConstraints();
        foreach (var (key, value) in metadata)
        {
            request = key switch
            {
                "sandstorm.isolation" => request with { IsolationLevel = Parse<IsolationLevel>(key, value) },
                "sandstorm.strategy" => request with { Strategy = Parse<RoutingStrategy>(key, value) },
                "sandstorm.securityTier" => request with { SecurityTier = Parse<SecurityTier>(key, value) },
                "sandstorm.runtime" => request with { RuntimePreference = value },
                "sandstorm.cpu" => request with { Cpu = double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var cpu) ? cpu : throw Bad(key, value) },
                "sandstorm.memory" => request with { Memory = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var memory) ? memory : throw Bad(key, value) },
                _ => request,
            };
            constraints = key switch
            {
                "sandstorm.maxCost" => constraints with { MaxCost = decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var cost) ? cost : throw Bad(key, value) },
                "sandstorm.region" => constraints with { PreferredRegion = value },
                _ => constraints,
            };
            if (key.StartsWith("sandstorm.", StringComparison.Ordinal)
                && key is not ("sandstorm.isolation" or "sandstorm.strategy" or "sandstorm.securityTier" or "sandstorm.runtime" or "sandstorm.cpu" or "sandstorm.memory" or "sandstorm.maxCost" or "sandstorm.region"))
            {
                throw new SandstormException(ErrorCodes.ValidationFailed, $"metadata '{key}' is not a Sandstorm setting (isolation, strategy, securityTier, runtime, cpu, memory, maxCost, region)", 400);
            }
        }

        return constraints == new RunConstraints() ? request : request with { Constraints = constraints };
    }

    /// <summary>
    /// E2B's <c>metadata</c> list filter: the SDK percent-encodes each key and value, joins the pairs as a form, and the URL
    /// encodes it once more; the framework decoded that last layer.
    /// </summary>
    public static Dictionary<string, string> Metadata(string filter)
    {
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery("?" + filter))
        {
            pairs[Uri.UnescapeDataString(pair.Key)] = Uri.UnescapeDataString(pair.Value.ToString());
        }

        return pairs;
    }

    private static object Created(string id, string template, string token) => new
    {
        sandboxID = id,
        templateID = template,
        alias = template,
        clientID = ClientId,
        envdVersion = EnvdVersion,
        envdAccessToken = token,
        trafficAccessToken = (string?)null,
        domain = (string?)null,
    };

    private static Dictionary<string, object?> Detail(SandboxRecord record, bool withToken)
    {
        var detail = new Dictionary<string, object?>
        {
            ["sandboxID"] = record.SandboxId,
            ["templateID"] = record.Request.Template ?? DefaultTemplate,
            ["alias"] = record.Request.Template ?? DefaultTemplate,
            ["clientID"] = ClientId,
            ["startedAt"] = record.ReadyAt ?? record.CreatedAt,
            ["endAt"] = record.ExpiresAt,
            ["cpuCount"] = (int)Math.Ceiling(record.Request.Cpu),
            ["memoryMB"] = record.Request.Memory,
            ["diskSizeMB"] = record.Request.Disk,
            ["metadata"] = record.Request.Metadata ?? new Dictionary<string, string>(),
            ["state"] = "running",
            ["envdVersion"] = EnvdVersion,
        };
        if (withToken)
        {
            detail["envdAccessToken"] = record.AccessToken;
            detail["domain"] = null;
            detail["allowInternetAccess"] = false;
        }

        return detail;
    }

    private static async Task<T> ReadAsync<T>(HttpContext http)
        where T : class
    {
        try
        {
            return await JsonSerializer.DeserializeAsync<T>(http.Request.Body, E2BJson, http.RequestAborted)
                ?? throw new SandstormException(ErrorCodes.MalformedJson, "the body is empty", 400);
        }
        catch (JsonException e)
        {
            throw JsonBody.Malformed(e, typeof(T).Name);
        }
    }

    // E2B's field names (templateID, envVars, allow_internet_access) as the SDK sends them.
    private static readonly JsonSerializerOptions E2BJson = new(JsonSerializerDefaults.Web) { AllowDuplicateProperties = false };

    private static SandstormException NotFound(string id) => new(ErrorCodes.NotFound, $"sandbox \"{id}\" doesn't exist or you don't have access to it", 404);

    private static SandstormException Bad(string key, string value) => new(ErrorCodes.ValidationFailed, $"metadata '{key}' is not a valid value: '{value}'", 400);

    private static SandboxService Service(HttpContext http) => http.RequestServices.GetRequiredService<SandboxService>();

    private static IResult Json(object value, int status) => RunEndpoints.Json(value, status);

    private static string ToToken(string continuation) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(continuation));

    private static string FromToken(string token)
    {
        try
        {
            return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(token));
        }
        catch (FormatException)
        {
            throw new SandstormException(ErrorCodes.ValidationFailed, "nextToken is a token from a previous page", 400);
        }
    }

    private sealed record NewSandbox
    {
        [JsonPropertyName("templateID")]
        public string? TemplateId { get; init; }

        public int? Timeout { get; init; }

        public IReadOnlyDictionary<string, string>? Metadata { get; init; }

        public IReadOnlyDictionary<string, string>? EnvVars { get; init; }

        [JsonPropertyName("allow_internet_access")]
        public bool? AllowInternetAccess { get; init; }

        public bool? AutoPause { get; init; }

        public bool? Secure { get; init; }

        [JsonExtensionData]
        public Dictionary<string, JsonElement>? Extra { get; init; }
    }

    private sealed record TimeoutBody(int? Timeout);

    /// <summary>An error in E2B's shape.</summary>
    private sealed class E2BError(int status, string message, string retryAfter) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = status;
            if (!string.IsNullOrEmpty(retryAfter))
            {
                httpContext.Response.Headers.RetryAfter = retryAfter;
            }

            return httpContext.Response.WriteAsJsonAsync(new { code = status, message }, httpContext.RequestAborted);
        }
    }
}
