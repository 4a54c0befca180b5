using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Errors;

namespace Sandstorm.Api.Batches;

/// <summary>HTTP handlers of the batch API, mapped by both hosts (see <see cref="ApiRoutes"/>).</summary>
public static class BatchEndpoints
{
    /// <summary>Largest batch body: 10,000 requests of a few KiB each.</summary>
    public const long MaxBytes = 64L * 1024 * 1024;

    /// <summary><c>POST /v1/batches</c>: a JSON array, or JSON Lines (<c>application/x-ndjson</c>, <c>application/jsonl</c>), of run requests.</summary>
    public static Task<IResult> SubmitBatchAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var jsonLines = IsJsonLines(http.Request.ContentType);
        var service = http.RequestServices.GetRequiredService<BatchService>();
        var key = http.Request.Headers["Idempotency-Key"].FirstOrDefault();
        var (batchId, _) = await SubmitStreamingAsync(http.Request, service, tenant, jsonLines, key, http.RequestAborted);
        return RunEndpoints.Json(new { id = batchId, status = "queued", results = $"/v1/batches/{batchId}/results" }, StatusCodes.Status202Accepted, $"/v1/batches/{batchId}");
    });

    /// <summary><c>GET /v1/batches/{id}</c>: counts, cost so far and where the results are.</summary>
    public static Task<IResult> GetBatchAsync(HttpContext http, DurableTaskClient client, string id) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var service = http.RequestServices.GetRequiredService<BatchService>();
        var view = await service.GetAsync(client, tenant, id, http.RequestAborted);
        return view is null ? Problems.NotFound($"batch '{id}'") : RunEndpoints.Json(view, StatusCodes.Status200OK);
    });

    /// <summary><c>DELETE /v1/batches/{id}</c>: cancels what has not started and stops what runs.</summary>
    public static Task<IResult> CancelBatchAsync(HttpContext http, DurableTaskClient client, string id) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var service = http.RequestServices.GetRequiredService<BatchService>();
        return await service.CancelAsync(client, tenant, id, http.RequestAborted) switch
        {
            null => Problems.NotFound($"batch '{id}'"),
            false => Problems.Of(ErrorCodes.Conflict, $"batch '{id}' has already finished", StatusCodes.Status409Conflict),
            true => RunEndpoints.Json(new { id, status = "cancelling" }, StatusCodes.Status202Accepted, $"/v1/batches/{id}"),
        };
    });

    /// <summary><c>GET /v1/batches/{id}/results</c>: JSON Lines, one line per finished item, in input order.</summary>
    public static Task<IResult> GetBatchResultsAsync(HttpContext http, string id) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var service = http.RequestServices.GetRequiredService<BatchService>();
        var streams = await service.OpenResultsAsync(tenant, id, http.RequestAborted);
        return streams is null ? Problems.NotFound($"batch '{id}'") : new JsonLinesResult(streams);
    });

    private static bool IsJsonLines(string? contentType) =>
        contentType is { } t && (t.Contains("ndjson", StringComparison.OrdinalIgnoreCase) || t.Contains("jsonl", StringComparison.OrdinalIgnoreCase));

    // The manifest is parsed as it arrives (item by item, never as one string), at most MaxBytes of it: a declared larger
    // body is refused before reading, an undeclared one (chunked) as soon as it crosses the limit.
    private static async Task<(string BatchId, bool Created)> SubmitStreamingAsync(
        HttpRequest request, BatchService service, string tenant, bool jsonLines, string? key, CancellationToken cancellationToken)
    {
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxBytes;
        }

        if (request.ContentLength > MaxBytes)
        {
            throw new SandstormException(ErrorCodes.PayloadTooLarge, $"the batch body is larger than {MaxBytes} bytes", 413);
        }

        if (request.ContentType is { } type && !type.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            throw new SandstormException(ErrorCodes.UnsupportedMediaType,
                $"expected application/json (an array), application/x-ndjson or application/jsonl, got '{type}'", 415);
        }

        try
        {
            return await service.SubmitAsync(tenant, request.Body, jsonLines, MaxBytes, key, cancellationToken);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == 413)
        {
            throw new SandstormException(ErrorCodes.PayloadTooLarge, $"the batch body is larger than {MaxBytes} bytes", 413);
        }
    }

    /// <summary>Streams the result blobs one after another without buffering them.</summary>
    private sealed class JsonLinesResult(IAsyncEnumerable<Stream> streams) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = StatusCodes.Status200OK;
            httpContext.Response.ContentType = "application/x-ndjson";
            await foreach (var stream in streams)
            {
                await using (stream)
                {
                    await stream.CopyToAsync(httpContext.Response.Body, httpContext.RequestAborted);
                }
            }
        }
    }
}
