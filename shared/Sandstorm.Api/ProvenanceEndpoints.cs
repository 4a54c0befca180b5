using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Errors;
using Sandstorm.Security.Provenance;

namespace Sandstorm.Api;

/// <summary>Provenance bundles and the transparency log, for <c>sandstorm verify</c> and auditors.</summary>
public static class ProvenanceEndpoints
{
    /// <summary><c>GET /v1/runs/{id}/provenance</c>: envelope, key, log index, inclusion proof and signed tree head.</summary>
    public static Task<IResult> GetBundleAsync(HttpContext http, string id) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var bundle = await Service(http).GetBundleAsync(tenant, id, http.RequestAborted);
        return bundle is null ? Problems.NotFound($"provenance of run '{id}'") : RunEndpoints.Json(bundle, StatusCodes.Status200OK);
    });

    /// <summary><c>GET /v1/log/head</c>: the current signed tree head.</summary>
    public static Task<IResult> GetHeadAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        await TenantAuth.RequireTenantAsync(http);
        return RunEndpoints.Json(await Service(http).GetTreeHeadAsync(http.RequestAborted), StatusCodes.Status200OK);
    });

    /// <summary><c>GET /v1/log/key</c>: the key that signs envelopes and tree heads.</summary>
    public static Task<IResult> GetKeyAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        await TenantAuth.RequireTenantAsync(http);
        return RunEndpoints.Json(await Service(http).GetPublicKeyAsync(http.RequestAborted), StatusCodes.Status200OK);
    });

    /// <summary><c>GET /v1/log/consistency?from=N&amp;to=M</c>: proof that the log of size M extends the log of size N.</summary>
    public static Task<IResult> GetConsistencyAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        await TenantAuth.RequireTenantAsync(http);
        var from = Size(http.Request, "from");
        var to = Size(http.Request, "to");
        try
        {
            return RunEndpoints.Json(await Service(http).GetConsistencyProofAsync(from, to, http.RequestAborted), StatusCodes.Status200OK);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new SandstormException(ErrorCodes.ValidationFailed, $"from and to must satisfy 0 <= from <= to <= the log size: {e.Message}");
        }
    });

    private static IProvenanceService Service(HttpContext http) => http.RequestServices.GetRequiredService<IProvenanceService>();

    private static long Size(HttpRequest request, string name) =>
        long.TryParse(request.Query[name].FirstOrDefault(), NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new SandstormException(ErrorCodes.ValidationFailed, $"{name} must be a non-negative integer");
}
