using System.IO.Compression;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Sandstorm.Providers.StandIns;

/// <summary>One export a <see cref="TelemetryStandIn"/> received: the path (the signal), its headers and its body (decompressed).</summary>
public sealed record TelemetryExport(string Path, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    /// <summary>True when <paramref name="text"/> occurs in the body (protobuf and JSON both carry names as UTF-8).</summary>
    public bool Contains(string text) => Body.AsSpan().IndexOf(Encoding.UTF8.GetBytes(text)) >= 0;

    /// <summary>True when these raw bytes (a trace id, in protobuf) occur in the body.</summary>
    public bool Contains(ReadOnlySpan<byte> bytes) => Body.AsSpan().IndexOf(bytes) >= 0;
}

/// <summary>
/// Stand-in for where telemetry goes (neither runs here): an OpenTelemetry Collector's OTLP/HTTP receiver
/// (<c>POST /v1/traces</c>, <c>/v1/metrics</c>, <c>/v1/logs</c>, answered with an empty protobuf response, which means
/// "all accepted") and Application Insights' ingestion endpoint (<c>POST /v2.1/track</c>, gzipped JSON lines, answered
/// with every item accepted). It records every export for the test to read.
/// </summary>
public sealed class TelemetryStandIn : IAsyncDisposable
{
    private readonly List<TelemetryExport> _exports = [];
    private StandInHost? _host;

    public Uri BaseUrl => _host!.BaseUrl;

    /// <summary>The exports received so far.</summary>
    public IReadOnlyList<TelemetryExport> Exports
    {
        get
        {
            lock (_exports)
            {
                return [.. _exports];
            }
        }
    }

    public static async Task<TelemetryStandIn> StartAsync()
    {
        var standIn = new TelemetryStandIn();
        standIn._host = await StandInHost.StartAsync(standIn.Map);
        return standIn;
    }

    public ValueTask DisposeAsync() => _host?.DisposeAsync() ?? ValueTask.CompletedTask;

    private void Map(WebApplication app)
    {
        foreach (var signal in new[] { "traces", "metrics", "logs" })
        {
            app.MapPost($"/v1/{signal}", async (HttpContext http) =>
            {
                await RecordAsync(http);
                http.Response.ContentType = "application/x-protobuf";
            });
        }

        app.MapPost("/v2.1/track", async (HttpContext http) =>
        {
            var export = await RecordAsync(http);
            var items = Encoding.UTF8.GetString(export.Body).Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
            return Results.Json(new { itemsReceived = items, itemsAccepted = items, errors = Array.Empty<object>() });
        });
    }

    private async Task<TelemetryExport> RecordAsync(HttpContext http)
    {
        using var body = new MemoryStream();
        var encoding = http.Request.Headers.ContentEncoding.ToString();
        if (encoding.Contains("gzip", StringComparison.OrdinalIgnoreCase))
        {
            await using var gzip = new GZipStream(http.Request.Body, CompressionMode.Decompress);
            await gzip.CopyToAsync(body);
        }
        else
        {
            await http.Request.Body.CopyToAsync(body);
        }

        var export = new TelemetryExport(
            http.Request.Path.Value ?? "",
            http.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
            body.ToArray());
        lock (_exports)
        {
            _exports.Add(export);
        }

        return export;
    }
}
