using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Providers;
using Sandstorm.Shield;
using Sandstorm.Storage;
using Sandstorm.Storage.Edge;
using Sandstorm.Storage.Shield;

namespace Sandstorm.Api;

/// <summary>
/// Shield's API (docs/shield.md): Falco alerts in (<c>POST /v1/shield/alerts</c>), a tenant's findings out
/// (<c>GET /v1/shield/findings</c>), and the tenant's own rules (<c>PUT</c>/<c>GET /v1/shield/rules</c>).
/// </summary>
public static class ShieldEndpoints
{
    /// <summary>Largest alert body: falcosidekick posts one alert (a few KiB); an array batches up to <see cref="MaxAlerts"/>.</summary>
    public const int MaxAlertBytes = 1024 * 1024;

    /// <summary>Most alerts in one post.</summary>
    public const int MaxAlerts = 100;

    /// <summary>Largest rule file a tenant may upload.</summary>
    public const int MaxRulesBytes = 256 * 1024;

    /// <summary>Most findings one listing returns (<c>limit</c> defaults to 500).</summary>
    public const int MaxFindings = 5000;

    /// <summary>Longest period one findings listing covers.</summary>
    public static readonly TimeSpan MaxPeriod = TimeSpan.FromDays(366);

    private static readonly string[] RuleMediaTypes = ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"];

    /// <summary>
    /// <c>POST /v1/shield/alerts</c> (tenant API key or edge agent token): Falco's JSON alerts as falcosidekick's webhook
    /// posts them — one alert object, or an array of them. Each is matched to the caller's sandboxes by the fields that
    /// name one (<see cref="FalcoAlertKeys"/>): on this host at once (killed when at or above the tenant's threshold), on
    /// edge agents at their next heartbeat, or to a run that already ended; and stored as a finding. A refused body stores
    /// nothing.
    /// </summary>
    public static Task<IResult> PostAlertsAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var (tenant, agentId) = await RequireTenantOrAgentAsync(http);
        var parsed = await ReadAlertsAsync(http);
        var services = http.RequestServices;
        var store = services.GetRequiredService<ShieldStore>();
        var time = services.GetRequiredService<TimeProvider>();
        var targets = services.GetServices<IShieldAlertTarget>().ToList();
        var rules = await store.GetRulesAsync(tenant, http.RequestAborted);
        var threshold = Priorities.TryParse(rules.QuarantineThreshold, out var t) ? t : Priority.Critical;
        var results = new List<object>();
        foreach (var (id, alert) in parsed)
        {
            var finding = alert.ToContract(id) with { DetectedAt = time.GetUtcNow() };
            var (ids, pids) = FalcoAlertKeys.Of(alert);
            var delivery = new ShieldAlertDelivery
            {
                TenantId = tenant,
                AgentId = agentId,
                Finding = finding,
                SandboxIds = ids,
                Pids = pids,
                Hostname = alert.Hostname,
                Kill = alert.Priority.IsAtLeast(threshold),
            };

            // The machine that runs the sandbox first (this host kills at once); then the edge agents; then the runs
            // that already ended under one of the ids.
            ShieldAlertMatch? match = null;
            foreach (var target in targets.OrderBy(x => x is IDispatchingProvider ? 1 : 0))
            {
                match = await target.DeliverAsync(delivery, CancellationToken.None);
                if (match is not null)
                {
                    break;
                }
            }

            var record = new ShieldFindingRecord
            {
                TenantId = tenant,
                Finding = match?.Finding ?? finding,
                RunId = match?.RunId,
                KeptSandboxId = match is { Kept: true } ? match.SandboxId : null,
                Provider = match?.Provider,
                Action = match?.Action ?? "unmatched",
                ReceivedAt = finding.DetectedAt,
            };
            if (match is null && await EndedRunAsync(store, tenant, ids, http.RequestAborted) is { } ended)
            {
                record = record with { RunId = ended.RunId, Provider = ended.Provider, Action = "ended" };
            }

            await store.PutFindingAsync(record, CancellationToken.None);
            results.Add(new
            {
                id,
                rule = record.Finding.Rule,
                priority = record.Finding.Priority,
                action = record.Action,
                runId = record.RunId,
                sandboxId = match?.SandboxId,
                provider = record.Provider,
                quarantineLatencyMs = record.Finding.QuarantineLatencyMs,
            });
        }

        services.GetService<ILoggerFactory>()?.CreateLogger("Sandstorm.Shield")
            .LogInformation("{Count} Falco alert(s) from tenant {TenantId}{Agent}", results.Count, tenant, agentId is null ? "" : $" (agent {agentId})");
        return RunEndpoints.Json(new { accepted = results.Count, threshold = threshold.WireName(), results }, StatusCodes.Status200OK);
    });

    /// <summary><c>GET /v1/shield/findings?from=&amp;to=[&amp;limit=]</c>: the tenant's findings whose event happened in [from, to).</summary>
    public static Task<IResult> GetFindingsAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        var to = Date(http.Request, "to") ?? time.GetUtcNow().AddMinutes(1);
        var from = Date(http.Request, "from") ?? to.AddDays(-7);
        if (from > to || to - from > MaxPeriod)
        {
            throw Invalid("from", $"from must not be after to, and the period is at most {MaxPeriod.TotalDays:0} days");
        }

        var limit = http.Request.Query["limit"].FirstOrDefault() is { } raw
            ? int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var l) && l is >= 1 and <= MaxFindings ? l : throw Invalid("limit", $"limit must be 1 to {MaxFindings}")
            : 500;
        var store = http.RequestServices.GetRequiredService<ShieldStore>();
        var found = await store.ListFindingsAsync(tenant, from, to, limit + 1, http.RequestAborted);
        var truncated = found.Count > limit;
        var findings = found.Take(limit).Select(r => new
        {
            r.Finding,
            r.RunId,
            r.KeptSandboxId,
            r.Provider,
            r.Action,
            r.ReceivedAt,
        }).ToList();
        return RunEndpoints.Json(new { tenant, from, to, count = findings.Count, truncated, findings }, StatusCodes.Status200OK);
    });

    /// <summary>
    /// <c>PUT /v1/shield/rules[?quarantineThreshold=critical]</c>: the tenant's rule file (Falco's YAML, body of type
    /// application/yaml or text/plain), checked before it is kept — every problem answered with its line — and the
    /// priority at or above which a finding quarantines. An empty file keeps only the default rules.
    /// </summary>
    public static Task<IResult> PutRulesAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var store = http.RequestServices.GetRequiredService<ShieldStore>();
        var threshold = http.Request.Query["quarantineThreshold"].FirstOrDefault() is { } asked
            ? Priorities.TryParse(asked, out var p) ? p : throw Invalid("quarantineThreshold", "quarantineThreshold must be a Falco priority: emergency, alert, critical, error, warning, notice, informational, debug")
            : Priorities.TryParse((await store.GetRulesAsync(tenant, http.RequestAborted)).QuarantineThreshold, out var kept) ? kept : Priority.Critical;
        var yaml = await ReadRulesAsync(http);
        RuleSet compiled;
        try
        {
            compiled = ShieldRules.CompileTenant(tenant, yaml);
        }
        catch (RuleValidationException e)
        {
            throw new SandstormException(
                ErrorCodes.ValidationFailed,
                $"the rule file has {e.Errors.Count} problem(s): {string.Join("; ", e.Errors.Take(5))}",
                StatusCodes.Status400BadRequest,
                new Dictionary<string, string[]> { ["rules"] = [.. e.Errors.Select(x => x.ToString())] });
        }

        var names = compiled.Rules.Select(r => r.Name).ToList();
        var saved = await store.SetRulesAsync(tenant, yaml, threshold.WireName(), names, CancellationToken.None);
        return RunEndpoints.Json(RulesView(tenant, saved, includeFile: false), StatusCodes.Status200OK);
    });

    /// <summary><c>GET /v1/shield/rules</c>: the tenant's rule file, its rules, its threshold, and the default rules beside them.</summary>
    public static Task<IResult> GetRulesAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var rules = await http.RequestServices.GetRequiredService<ShieldStore>().GetRulesAsync(tenant, http.RequestAborted);
        return RunEndpoints.Json(RulesView(tenant, rules, includeFile: true), StatusCodes.Status200OK);
    });

    private static object RulesView(string tenant, ShieldTenantRules rules, bool includeFile) => new
    {
        tenant,
        quarantineThreshold = rules.QuarantineThreshold,
        rules = rules.RuleNames,
        sha256 = rules.Sha256.Length == 0 ? null : rules.Sha256,
        yaml = includeFile ? rules.Yaml : null,
        updatedAt = rules.UpdatedAt,
        defaultRules = ShieldRules.Default.Rules.Where(r => r.Enabled).Select(r => new { name = r.Name, priority = r.Priority.WireName() }),
    };

    /// <summary>The tenant of a tenant API key, or the tenant and agent of an edge agent token; 401 otherwise.</summary>
    private static async Task<(string Tenant, string? AgentId)> RequireTenantOrAgentAsync(HttpContext http)
    {
        var token = TenantAuth.BearerToken(http.Request);
        if (token is not null)
        {
            if (await http.RequestServices.GetRequiredService<ApiKeyStore>().ResolveAsync(token, http.RequestAborted) is { } tenant)
            {
                return (tenant, null);
            }

            if (await http.RequestServices.GetRequiredService<EdgeAgentStore>().ResolveTokenAsync(token, http.RequestAborted) is { } agent)
            {
                return (agent.TenantId, agent.AgentId);
            }
        }

        http.Response.Headers.WWWAuthenticate = "Bearer";
        throw new SandstormException(
            ErrorCodes.Unauthorized,
            token is null ? "a tenant API key or an edge agent token is required: Authorization: Bearer <key>" : "the credential is not valid",
            StatusCodes.Status401Unauthorized);
    }

    /// <summary>The alerts of the body, each with its id; every one must parse, else nothing is taken.</summary>
    private static async Task<List<(string Id, Finding Alert)>> ReadAlertsAsync(HttpContext http)
    {
        var text = await ReadTextAsync(http, MaxAlertBytes, ["application/json"], "Falco alerts");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw JsonBody.Malformed(e, "Falco alert");
        }

        using (document)
        {
            var root = document.RootElement;
            var elements = root.ValueKind switch
            {
                JsonValueKind.Object => [root],
                JsonValueKind.Array => root.EnumerateArray().ToList(),
                _ => throw Invalid("body", "the body is one Falco alert (a JSON object) or an array of them"),
            };
            if (elements.Count is 0 or > MaxAlerts)
            {
                throw Invalid("body", $"post 1 to {MaxAlerts} alerts at a time");
            }

            var alerts = new List<(string, Finding)>();
            var problems = new Dictionary<string, string[]>();
            for (var i = 0; i < elements.Count; i++)
            {
                try
                {
                    alerts.Add((FalcoAlertKeys.IdOf(elements[i]), FalcoAlerts.Parse(elements[i].GetRawText())));
                }
                catch (FormatException e)
                {
                    problems[root.ValueKind == JsonValueKind.Array ? $"[{i}]" : "body"] = [e.Message];
                }
            }

            if (problems.Count > 0)
            {
                throw new SandstormException(
                    ErrorCodes.ValidationFailed,
                    "not a Falco alert: " + string.Join("; ", problems.Select(p => $"{p.Key}: {p.Value[0]}")),
                    StatusCodes.Status400BadRequest,
                    problems);
            }

            return alerts;
        }
    }

    private static Task<string> ReadRulesAsync(HttpContext http) => ReadTextAsync(http, MaxRulesBytes, RuleMediaTypes, "a Falco rule file");

    private static async Task<string> ReadTextAsync(HttpContext http, int maxBytes, IReadOnlyList<string> mediaTypes, string what)
    {
        var request = http.Request;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = maxBytes;
        }

        if (request.ContentType is { } type && !mediaTypes.Any(m => type.StartsWith(m, StringComparison.OrdinalIgnoreCase)))
        {
            throw new SandstormException(ErrorCodes.UnsupportedMediaType, $"{what} is sent as {string.Join(" or ", mediaTypes)}, not '{type}'", 415);
        }

        if (request.ContentLength > maxBytes)
        {
            throw new SandstormException(ErrorCodes.PayloadTooLarge, $"{what} is at most {maxBytes} bytes", 413);
        }

        try
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = await request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
            {
                if (buffer.Length + read > maxBytes)
                {
                    throw new SandstormException(ErrorCodes.PayloadTooLarge, $"{what} is at most {maxBytes} bytes", 413);
                }

                buffer.Write(chunk, 0, read);
            }

            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == 413)
        {
            throw new SandstormException(ErrorCodes.PayloadTooLarge, $"{what} is at most {maxBytes} bytes", 413);
        }
        catch (DecoderFallbackException)
        {
            throw Invalid("body", $"{what} must be UTF-8 text");
        }
    }

    private static async Task<ShieldExecutionRecord?> EndedRunAsync(ShieldStore store, string tenant, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        foreach (var id in ids)
        {
            // Only the caller's own runs: another tenant's id is as unknown as a missing one.
            var found = (await store.FindExecutionsAsync(id, cancellationToken)).Where(e => e.TenantId == tenant).ToList();
            if (found.Count == 1)
            {
                return found[0];
            }
        }

        return null;
    }

    private static DateTimeOffset? Date(HttpRequest request, string name) =>
        request.Query[name].FirstOrDefault() is not { } raw ? null
        : DateTimeOffset.TryParse(raw, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value) ? value
        : throw Invalid(name, $"{name} must be an ISO 8601 date");

    private static SandstormException Invalid(string field, string message) =>
        new(ErrorCodes.ValidationFailed, message, StatusCodes.Status400BadRequest, new Dictionary<string, string[]> { [field] = [message] });
}
