using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Sandboxes;
using Sandstorm.Security.Provenance;

namespace Sandstorm.Api.Sandboxes;

/// <summary>
/// The <c>/v1/sandboxes/...</c> endpoints: kept sandboxes, their commands (output streamed as Server-Sent Events) and
/// files. Thin over <see cref="SandboxService"/>; another tenant's sandbox answers 404 like a missing one.
/// </summary>
public static class SandboxEndpoints
{
    public const int MaxPageSize = 100;

    /// <summary><c>POST /v1/sandboxes</c> → 201 with the sandbox (placement, expiry).</summary>
    public static Task<IResult> CreateAsync(HttpContext http, DurableTaskClient client) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var request = await JsonBody.ReadAsync<SandboxCreateRequest>(http.Request, http.RequestAborted);
        var (sandbox, _) = await Service(http).CreateAsync(client, tenant, request, http.RequestAborted);
        return RunEndpoints.Json(sandbox, StatusCodes.Status201Created, $"/v1/sandboxes/{sandbox.Id}");
    });

    /// <summary><c>GET /v1/sandboxes?metadata=k=v&amp;state=running|all&amp;limit=&amp;next=</c> → a page, and the next page's token.</summary>
    public static Task<IResult> ListAsync(HttpContext http) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var query = http.Request.Query;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in query["metadata"])
        {
            if (pair is null || pair.IndexOf('=', StringComparison.Ordinal) is var at && at <= 0)
            {
                throw Invalid("metadata", "metadata filters are key=value");
            }

            metadata[pair[..at]] = pair[(at + 1)..];
        }

        var live = (query["state"].FirstOrDefault() ?? "running") switch
        {
            "running" => true,
            "all" => false,
            _ => throw Invalid("state", "state is running or all"),
        };
        var limit = query["limit"].FirstOrDefault() is { } raw
            ? int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var l) && l is >= 1 and <= MaxPageSize ? l : throw Invalid("limit", $"limit is 1 to {MaxPageSize}")
            : MaxPageSize;
        var next = query["next"].FirstOrDefault() is { } token ? Decode(token) : null;
        var (items, following) = await Service(http).ListAsync(tenant, metadata, live, limit, next, http.RequestAborted);
        return RunEndpoints.Json(new { sandboxes = items, next = following is null ? null : Encode(following) }, StatusCodes.Status200OK);
    });

    /// <summary><c>GET /v1/sandboxes/{id}</c></summary>
    public static Task<IResult> GetAsync(HttpContext http, string id) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        return await Service(http).GetAsync(tenant, id, http.RequestAborted) is { } sandbox
            ? RunEndpoints.Json(sandbox, StatusCodes.Status200OK)
            : Problems.NotFound($"sandbox '{id}'");
    });

    /// <summary><c>DELETE /v1/sandboxes/{id}</c>: ends it now (everything in it is killed, its life billed, its record signed) → 202.</summary>
    public static Task<IResult> DeleteAsync(HttpContext http, DurableTaskClient client, string id) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        return await Service(http).EndAsync(client, tenant, id, SandboxStatus.Stopped, http.RequestAborted) switch
        {
            null => Problems.NotFound($"sandbox '{id}'"),
            false => Problems.Of(ErrorCodes.SandboxEnded, $"sandbox '{id}' has already ended", StatusCodes.Status409Conflict),
            true => RunEndpoints.Json(new { id, status = "stopping" }, StatusCodes.Status202Accepted, $"/v1/sandboxes/{id}"),
        };
    });

    /// <summary><c>POST /v1/sandboxes/{id}/timeout</c> <c>{"timeout": seconds}</c>: the lifetime from now, longer or shorter.</summary>
    public static Task<IResult> SetTimeoutAsync(HttpContext http, DurableTaskClient client, string id) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var body = await JsonBody.ReadAsync<SandboxTimeoutRequest>(http.Request, http.RequestAborted);
        return RunEndpoints.Json(await Service(http).SetTimeoutAsync(client, tenant, id, body.Timeout, http.RequestAborted), StatusCodes.Status200OK);
    });

    /// <summary>
    /// <c>POST /v1/sandboxes/{id}/commands</c>: runs a command. Its output streams back as Server-Sent Events as it comes
    /// (<c>start</c>, <c>stdout</c>, <c>stderr</c>, <c>end</c>); with <c>"background": true</c> → 202 with the command, whose
    /// events are at <c>.../commands/{commandId}/events</c>.
    /// </summary>
    public static Task<IResult> RunCommandAsync(HttpContext http, string id) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var request = await JsonBody.ReadAsync<CommandRequest>(http.Request, http.RequestAborted);
        var command = await Service(http).StartCommandAsync(tenant, id, request, http.RequestAborted);
        var location = $"/v1/sandboxes/{id}/commands/{command.CommandId}";
        if (request.Background)
        {
            return RunEndpoints.Json(command.ToInfo(), StatusCodes.Status202Accepted, location);
        }

        http.Response.Headers.Location = location;
        return new EventStream(command, 0, Base64(http.Request));
    });

    /// <summary><c>GET /v1/sandboxes/{id}/commands</c></summary>
    public static Task<IResult> ListCommandsAsync(HttpContext http, string id) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        return RunEndpoints.Json(new { commands = await Service(http).ListCommandsAsync(tenant, id, http.RequestAborted) }, StatusCodes.Status200OK);
    });

    /// <summary><c>GET /v1/sandboxes/{id}/commands/{commandId}</c></summary>
    public static Task<IResult> GetCommandAsync(HttpContext http, string id, string commandId) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var commands = await Service(http).ListCommandsAsync(tenant, id, http.RequestAborted);
        return commands.FirstOrDefault(c => c.Id == commandId) is { } command
            ? RunEndpoints.Json(command, StatusCodes.Status200OK)
            : Problems.NotFound($"command '{commandId}'");
    });

    /// <summary><c>GET /v1/sandboxes/{id}/commands/{commandId}/events</c>: the command's events after <c>Last-Event-ID</c> (SSE).</summary>
    public static Task<IResult> CommandEventsAsync(HttpContext http, string id, string commandId) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var after = ServerSentEvents.ResumeAfter(http.Request);
        var command = await Service(http).CommandAsync(tenant, id, commandId, http.RequestAborted);
        return new EventStream(command, after, Base64(http.Request));
    });

    /// <summary><c>POST /v1/sandboxes/{id}/commands/{commandId}/stdin</c> <c>{data | dataBase64, close}</c> → 204.</summary>
    public static Task<IResult> SendInputAsync(HttpContext http, string id, string commandId) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var body = await JsonBody.ReadAsync<CommandInputRequest>(http.Request, http.RequestAborted);
        if (body.Data is not null && body.DataBase64 is not null)
        {
            throw Invalid("data", "give data or dataBase64, not both");
        }

        byte[] bytes;
        try
        {
            bytes = body.DataBase64 is { } b64 ? Convert.FromBase64String(b64) : Encoding.UTF8.GetBytes(body.Data ?? "");
        }
        catch (FormatException)
        {
            throw Invalid("dataBase64", "dataBase64 is not valid base64");
        }

        if (bytes.Length > 1024 * 1024)
        {
            throw new SandstormException(ErrorCodes.PayloadTooLarge, "at most 1 MiB of input per call", 413);
        }

        await Service(http).SendInputAsync(tenant, id, commandId, bytes, body.Close, http.RequestAborted);
        return Results.NoContent();
    });

    /// <summary><c>DELETE /v1/sandboxes/{id}/commands/{commandId}</c>: kills it and its process group → 202 (409 once ended).</summary>
    public static Task<IResult> KillCommandAsync(HttpContext http, string id, string commandId) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        return await Service(http).KillCommandAsync(tenant, id, commandId, http.RequestAborted)
            ? RunEndpoints.Json(new { id = commandId, status = "killing" }, StatusCodes.Status202Accepted)
            : Problems.Of(ErrorCodes.Conflict, $"command '{commandId}' has already ended", StatusCodes.Status409Conflict);
    });

    /// <summary><c>GET /v1/sandboxes/{id}/files?path=&amp;depth=</c>: a directory's entries, <c>depth</c> levels down (default 1).</summary>
    public static Task<IResult> ListFilesAsync(HttpContext http, string id) => Files(http, id, async (session, path) =>
    {
        var depth = http.Request.Query["depth"].FirstOrDefault() is { } raw
            ? int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var d) && d is >= 1 and <= 32 ? d : throw Invalid("depth", "depth is 1 to 32")
            : 1;
        return RunEndpoints.Json(new { entries = (await session.ListAsync(path ?? "/home/user", depth, http.RequestAborted)).Select(Entry) }, StatusCodes.Status200OK);
    });

    /// <summary><c>GET /v1/sandboxes/{id}/files/stat?path=</c></summary>
    public static Task<IResult> StatFileAsync(HttpContext http, string id) => Files(http, id, async (session, path) =>
        RunEndpoints.Json(Entry(await session.StatAsync(Required(path), http.RequestAborted)), StatusCodes.Status200OK));

    /// <summary><c>GET /v1/sandboxes/{id}/files/content?path=</c>: the file's bytes (at most 100 MiB).</summary>
    public static Task<IResult> ReadFileAsync(HttpContext http, string id) => Files(http, id, async (session, path) =>
    {
        var response = http.Response;
        await session.ReadFileAsync(Required(path), SandboxService.MaxFileBytes, entry =>
        {
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/octet-stream";
            response.ContentLength = entry.Size;
            return response.Body;
        }, http.RequestAborted);
        return Results.Empty;
    });

    /// <summary><c>PUT /v1/sandboxes/{id}/files/content?path=</c> with the bytes as the body (at most 100 MiB): whole or not at all.</summary>
    public static Task<IResult> WriteFileAsync(HttpContext http, string id) => Files(http, id, async (session, path) =>
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = SandboxService.MaxFileBytes;
        }

        if (http.Request.ContentLength > SandboxService.MaxFileBytes)
        {
            throw new SandstormException(ErrorCodes.PayloadTooLarge, $"a file is at most {SandboxService.MaxFileBytes} bytes", 413);
        }

        try
        {
            return RunEndpoints.Json(Entry(await session.WriteFileAsync(Required(path), http.Request.Body, SandboxService.MaxFileBytes, http.RequestAborted)), StatusCodes.Status200OK);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == 413)
        {
            throw new SandstormException(ErrorCodes.PayloadTooLarge, $"a file is at most {SandboxService.MaxFileBytes} bytes", 413);
        }
    });

    /// <summary><c>POST /v1/sandboxes/{id}/files/mkdir</c> <c>{path}</c> → 201 (409 when it exists).</summary>
    public static Task<IResult> MakeDirectoryAsync(HttpContext http, string id) => Files(http, id, async (session, _) =>
    {
        var body = await JsonBody.ReadAsync<FileOperationRequest>(http.Request, http.RequestAborted);
        return RunEndpoints.Json(Entry(await session.MakeDirectoryAsync(Required(body.Path), http.RequestAborted)), StatusCodes.Status201Created);
    });

    /// <summary><c>POST /v1/sandboxes/{id}/files/move</c> <c>{path, destination}</c></summary>
    public static Task<IResult> MoveFileAsync(HttpContext http, string id) => Files(http, id, async (session, _) =>
    {
        var body = await JsonBody.ReadAsync<FileOperationRequest>(http.Request, http.RequestAborted);
        if (string.IsNullOrEmpty(body.Destination))
        {
            throw Invalid("destination", "destination is required");
        }

        return RunEndpoints.Json(Entry(await session.MoveAsync(Required(body.Path), body.Destination, http.RequestAborted)), StatusCodes.Status200OK);
    });

    /// <summary><c>DELETE /v1/sandboxes/{id}/files?path=</c> → 204.</summary>
    public static Task<IResult> RemoveFileAsync(HttpContext http, string id) => Files(http, id, async (session, path) =>
    {
        await session.RemoveAsync(Required(path), http.RequestAborted);
        return Results.NoContent();
    });

    /// <summary><c>GET /v1/sandboxes/{id}/provenance</c>: the signed record of every command, once the sandbox has ended.</summary>
    public static Task<IResult> GetProvenanceAsync(HttpContext http, string id) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var sandbox = await Service(http).GetAsync(tenant, id, http.RequestAborted);
        if (sandbox is null)
        {
            return Problems.NotFound($"sandbox '{id}'");
        }

        var bundle = await http.RequestServices.GetRequiredService<IProvenanceService>().GetBundleAsync(tenant, id, http.RequestAborted);
        return bundle is null
            ? Problems.Of(ErrorCodes.Conflict, $"sandbox '{id}' has not ended yet: its record is signed when it ends", StatusCodes.Status409Conflict)
            : RunEndpoints.Json(bundle, StatusCodes.Status200OK);
    });

    /// <summary>A file entry as the API shows it.</summary>
    public static object Entry(SandboxFileInfo e) => new
    {
        name = e.Name,
        type = e.Type,
        path = e.Path,
        size = e.Size,
        mode = e.Mode,
        permissions = e.Permissions,
        owner = e.Owner,
        group = e.Group,
        modifiedAt = e.Modified,
        symlinkTarget = e.SymlinkTarget,
    };

    private static Task<IResult> Files(HttpContext http, string id, Func<ISandboxSession, string?, Task<IResult>> operation) => RunEndpoints.Guard(http, async () =>
    {
        var tenant = await TenantAuth.RequireTenantAsync(http);
        var path = http.Request.Query["path"].FirstOrDefault();
        var live = await Service(http).LiveAsync(http.RequestServices.GetService<DurableTaskClient>(), tenant, id, http.RequestAborted);
        try
        {
            return await operation(live.Session, path);
        }
        catch (SandboxException e)
        {
            throw SandboxService.Problem(e, live.Record);
        }
    });

    private static string Required(string? path) =>
        string.IsNullOrEmpty(path) ? throw Invalid("path", "path is required (absolute under /home/user or /tmp, or relative to /home/user)") : path;

    private static bool Base64(HttpRequest request) =>
        (request.Query["encoding"].FirstOrDefault() ?? "text") switch
        {
            "text" => false,
            "base64" => true,
            _ => throw Invalid("encoding", "encoding is text (UTF-8, invalid bytes replaced) or base64"),
        };

    private static SandboxService Service(HttpContext http) => http.RequestServices.GetRequiredService<SandboxService>();

    private static SandstormException Invalid(string field, string message) =>
        new(ErrorCodes.ValidationFailed, message, 400, new Dictionary<string, string[]> { [field] = [message] });

    private static string Encode(string token) => Convert.ToBase64String(Encoding.UTF8.GetBytes(token)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string Decode(string token)
    {
        try
        {
            var b64 = token.Replace('-', '+').Replace('_', '/');
            return Encoding.UTF8.GetString(Convert.FromBase64String(b64 + new string('=', (4 - (b64.Length % 4)) % 4)));
        }
        catch (FormatException)
        {
            throw Invalid("next", "next is a token from a previous page");
        }
    }

    /// <summary>A command's events as Server-Sent Events, from the one after <c>after</c>.</summary>
    private sealed class EventStream(CommandStream command, long after, bool base64) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext) =>
            ServerSentEvents.WriteAsync(
                httpContext,
                command.ReadAsync(after, httpContext.RequestAborted),
                e => (e.Id, e.Kind switch
                {
                    CommandEventKind.Start => "start",
                    CommandEventKind.Stdout => "stdout",
                    CommandEventKind.Stderr => "stderr",
                    CommandEventKind.End => "end",
                    _ => "gap",
                }),
                (e, json) =>
                {
                    json.WriteStartObject();
                    switch (e.Kind)
                    {
                        case CommandEventKind.Start:
                            json.WriteString("commandId", command.CommandId);
                            json.WriteNumber("pid", command.Pid);
                            break;
                        case CommandEventKind.Stdout or CommandEventKind.Stderr when base64:
                            json.WriteBase64String("base64", e.Data.Span);
                            break;
                        case CommandEventKind.Stdout or CommandEventKind.Stderr:
                            // Valid UTF-8 goes as it is; invalid bytes are replaced (U+FFFD), as the text encoding says.
                            if (System.Text.Unicode.Utf8.IsValid(e.Data.Span))
                            {
                                json.WriteString("data", e.Data.Span);
                            }
                            else
                            {
                                json.WriteString("data", Encoding.UTF8.GetString(e.Data.Span));
                            }

                            break;
                        case CommandEventKind.End:
                            var end = command.End!;
                            json.WriteString("status", end.Status);
                            if (end.ExitCode is { } code)
                            {
                                json.WriteNumber("exitCode", code);
                            }

                            if (end.Signal is { } signal)
                            {
                                json.WriteNumber("signal", signal);
                            }

                            if (end.Error is { } error)
                            {
                                json.WriteString("error", error);
                            }

                            json.WriteNumber("durationMs", (long)(end.At - command.StartedAt).TotalMilliseconds);
                            break;
                        default:
                            json.WriteNumber("droppedThrough", e.Id);
                            json.WriteString("message", "older output of this command is no longer kept");
                            break;
                    }

                    json.WriteEndObject();
                },
                httpContext.RequestAborted);
    }
}
