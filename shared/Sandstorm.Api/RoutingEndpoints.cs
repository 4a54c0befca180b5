using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Routing.Storage;

namespace Sandstorm.Api;

/// <summary>What the scheduled re-optimisation last did, for operators and curious tenants.</summary>
public static class RoutingEndpoints
{
    /// <summary>
    /// <c>GET /v1/routing/report</c>: the last stored re-optimisation report (models compared, promotion, price changes,
    /// expected savings). It holds no tenant data (aggregate metrics only), so any valid tenant key may read it.
    /// </summary>
    public static Task<IResult> GetReportAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        await TenantAuth.RequireTenantAsync(http);
        var store = http.RequestServices.GetService<IModelStore>();
        var report = store is null ? null : await store.GetLatestReportAsync(http.RequestAborted);
        return report is null ? Problems.NotFound("a re-optimisation report") : RunEndpoints.Json(report, StatusCodes.Status200OK);
    });
}
