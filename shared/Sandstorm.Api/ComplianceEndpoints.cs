using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Errors;
using Sandstorm.Security.Compliance;
using Sandstorm.Storage;
using Sandstorm.Storage.Shield;

namespace Sandstorm.Api;

/// <summary><c>GET /v1/compliance/reports</c>: signed compliance evidence of the tenant's runs over a period (docs/shield.md).</summary>
public static class ComplianceEndpoints
{
    /// <summary>Longest period one report covers.</summary>
    public static readonly TimeSpan MaxPeriod = TimeSpan.FromDays(366);

    /// <summary>
    /// <c>GET /v1/compliance/reports?standard=soc2|hipaa|pci-dss&amp;from=&amp;to=[&amp;format=html]</c>: the report of the runs
    /// settled in [from, to) — JSON: a signed bundle (DSSE envelope whose payload is the report, and the key); HTML: a
    /// readable page of the same report.
    /// </summary>
    public static Task<IResult> GetReportAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var query = http.Request.Query;
        var standard = query["standard"].FirstOrDefault();
        if (standard is null || !ComplianceStandards.All.ContainsKey(standard))
        {
            throw Invalid("standard", $"standard must be one of {string.Join(", ", ComplianceStandards.All.Keys)}");
        }

        var format = query["format"].FirstOrDefault() ?? "json";
        if (format is not ("json" or "html"))
        {
            throw Invalid("format", "format must be json or html");
        }

        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        var to = Date(http.Request, "to") ?? time.GetUtcNow();
        var from = Date(http.Request, "from") ?? to.AddDays(-30);
        if (from >= to || to - from > MaxPeriod)
        {
            throw Invalid("from", $"from must be before to, and the period is at most {MaxPeriod.TotalDays:0} days");
        }

        var runIds = new List<string>();
        await foreach (var entry in http.RequestServices.GetRequiredService<LedgerStore>().QueryAsync(tenant, from, to, http.RequestAborted))
        {
            // Runs only: a kept sandbox's record has its own predicate (its commands), not a run's evidence.
            if (entry.Kind != LedgerEntry.RunKind)
            {
                continue;
            }

            runIds.Add(entry.RunId);
            if (runIds.Count > ComplianceReportService.MaxRuns)
            {
                throw new SandstormException(
                    ErrorCodes.ValidationFailed,
                    $"the period holds more than {ComplianceReportService.MaxRuns} runs: ask for a shorter one",
                    StatusCodes.Status422UnprocessableEntity,
                    new Dictionary<string, string[]> { ["from"] = [$"at most {ComplianceReportService.MaxRuns} runs per report"] });
            }
        }

        var stored = await http.RequestServices.GetRequiredService<ShieldStore>().ListFindingsAsync(tenant, from, to, 1000, http.RequestAborted);
        var (report, bundle) = await http.RequestServices.GetRequiredService<ComplianceReportService>().BuildAsync(
            new ComplianceReportRequest
            {
                Standard = standard,
                TenantId = tenant,
                From = from,
                To = to,
                RunIds = runIds,
                StoredFindings = [.. stored.Select(f => new ComplianceStoredFinding(f.Finding, f.RunId, f.Action))],
            },
            http.RequestAborted);
        return format == "html"
            ? TypedResults.Content(ComplianceHtml.Render(report), "text/html; charset=utf-8")
            : RunEndpoints.Json(bundle, StatusCodes.Status200OK);
    });

    private static DateTimeOffset? Date(HttpRequest request, string name) =>
        request.Query[name].FirstOrDefault() is not { } raw ? null
        : DateTimeOffset.TryParse(raw, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value) ? value
        : throw Invalid(name, $"{name} must be an ISO 8601 date");

    private static SandstormException Invalid(string field, string message) =>
        new(ErrorCodes.ValidationFailed, message, StatusCodes.Status400BadRequest, new Dictionary<string, string[]> { [field] = [message] });
}
