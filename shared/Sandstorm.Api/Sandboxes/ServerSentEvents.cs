using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Sandstorm.Api.Sandboxes;

/// <summary>
/// Writes Server-Sent Events: every event carries its <c>id:</c> (a client resumes with <c>Last-Event-ID</c> and gets
/// the rest, nothing twice), a comment line keeps an idle stream open, and each event is flushed as it is written.
/// </summary>
public static class ServerSentEvents
{
    public const string ContentType = "text/event-stream";

    /// <summary>An idle stream gets a comment line this often, so proxies do not cut it.</summary>
    public static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    private static readonly byte[] KeepAliveLine = ": keep-alive\n\n"u8.ToArray();

    // Output is most of what a stream carries: only what JSON itself requires is escaped (a data line is never HTML).
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The id after which a client resumes: <c>Last-Event-ID</c>, else the <c>after</c> query value, else 0.</summary>
    public static long ResumeAfter(HttpRequest request)
    {
        var raw = request.Headers["Last-Event-ID"].FirstOrDefault() ?? request.Query["after"].FirstOrDefault();
        return raw is null ? 0 : long.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) && id >= 0
            ? id
            : throw new Core.Errors.SandstormException(Core.Errors.ErrorCodes.ValidationFailed, "Last-Event-ID (or after) is a non-negative event id", 400);
    }

    /// <summary>Starts an event stream on the response and writes each event as it comes, until the source ends.</summary>
    public static async Task WriteAsync<T>(
        HttpContext http, IAsyncEnumerable<T> events, Func<T, (long Id, string Name)> head, Action<T, Utf8JsonWriter> data, CancellationToken ct)
    {
        var response = http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ContentType;
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await response.StartAsync(ct);

        var body = response.BodyWriter;
        var json = new ArrayBufferWriter<byte>(64 * 1024);
        await using var next = events.GetAsyncEnumerator(ct);
        var pending = next.MoveNextAsync().AsTask();
        while (true)
        {
            var idle = Task.Delay(KeepAlive, ct);
            if (await Task.WhenAny(pending, idle) == idle)
            {
                await body.WriteAsync(KeepAliveLine, ct);
                continue;
            }

            if (!await pending)
            {
                break;
            }

            var item = next.Current;
            var (id, name) = head(item);
            json.ResetWrittenCount();
            using (var writer = new Utf8JsonWriter(json, WriterOptions))
            {
                data(item, writer);
            }

            Write(body, $"id: {id}\nevent: {name}\ndata: ");
            body.Write(json.WrittenSpan);
            Write(body, "\n\n");
            pending = next.MoveNextAsync().AsTask();

            // Several events already waiting go out in one flush.
            if (!pending.IsCompleted)
            {
                await body.FlushAsync(ct);
            }
        }

        await body.FlushAsync(ct);
    }

    private static void Write(IBufferWriter<byte> body, string text)
    {
        var span = body.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        body.Advance(Encoding.UTF8.GetBytes(text, span));
    }
}
