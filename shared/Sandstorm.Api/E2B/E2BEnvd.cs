using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Net.Http.Headers;
using Sandstorm.Api.Sandboxes;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Sandboxes;

namespace Sandstorm.Api.E2B;

/// <summary>
/// E2B's in-sandbox daemon (envd) as the official SDK speaks to it, served by the host for every sandbox: the Connect
/// protocol with JSON (unary calls as plain JSON; server streams as enveloped frames ending with an end-of-stream frame),
/// <c>/files</c> uploads and downloads, and <c>/health</c>. A call names its sandbox with <c>E2b-Sandbox-Id</c> and carries
/// that sandbox's token (<c>X-Access-Token</c>, or a <c>/files</c> URL signature). Commands run as user <c>user</c> with home
/// and default working directory <c>/home/user</c>, like E2B's, and go straight to the live sandbox.
/// </summary>
public static class E2BEnvd
{
    public const string SandboxHeader = "E2b-Sandbox-Id";

    private const string ConnectJson = "application/connect+json";
    private static readonly byte[] EndOfStreamOk = [0x02, 0, 0, 0, 2, (byte)'{', (byte)'}'];

    /// <summary><c>GET /health</c> → 204 while the sandbox runs, 502 once it is gone (so the SDK reports it ended).</summary>
    public static Task<IResult> HealthAsync(HttpContext http) => E2BControlPlane.Guard(http, async () =>
    {
        var id = http.Request.Headers[SandboxHeader].FirstOrDefault();
        var live = id is null ? null : await Service(http).LiveByTokenAsync(Client(http), id, http.Request.Headers["X-Access-Token"].FirstOrDefault(), http.RequestAborted).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null, TaskScheduler.Default);
        return live is { Session.IsAlive: true } ? Results.NoContent() : E2BControlPlane.Error(502, $"sandbox {id} is not running");
    });

    /// <summary><c>GET /files?path=&amp;username=</c> → the file's bytes.</summary>
    public static Task<IResult> ReadFileAsync(HttpContext http) => E2BControlPlane.Guard(http, async () =>
    {
        var path = http.Request.Query["path"].FirstOrDefault() ?? throw Rest(400, "path is required");
        var live = await SandboxForFilesAsync(http, path, "read");
        var response = http.Response;
        try
        {
            await live.Session.ReadFileAsync(path, SandboxService.MaxFileBytes, entry =>
            {
                response.StatusCode = StatusCodes.Status200OK;
                response.ContentType = "application/octet-stream";
                response.ContentLength = entry.Size;
                response.Headers.ContentDisposition = $"attachment; filename=\"{entry.Name.Replace("\"", "", StringComparison.Ordinal)}\"";
                return response.Body;
            }, http.RequestAborted);
        }
        catch (SandboxException e)
        {
            throw RestError(e);
        }

        return Results.Empty;
    });

    /// <summary>
    /// <c>POST /files[?path=&amp;username=]</c>: multipart (field <c>file</c>, the full target path as each part's filename
    /// when there is no <c>path</c>) or one octet-stream body (optionally gzip) → 200 with the written entries, in order.
    /// </summary>
    public static Task<IResult> WriteFilesAsync(HttpContext http) => E2BControlPlane.Guard(http, async () =>
    {
        var target = http.Request.Query["path"].FirstOrDefault();
        var live = await SandboxForFilesAsync(http, target, "write");
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = SandboxService.MaxFileBytes;
        }

        var written = new List<object>();
        async Task WriteAsync(string path, Stream content)
        {
            try
            {
                var entry = await live.Session.WriteFileAsync(path, content, SandboxService.MaxFileBytes, http.RequestAborted);
                written.Add(new { path = entry.Path, name = entry.Name, type = "file" });
            }
            catch (SandboxException e)
            {
                throw RestError(e);
            }
        }

        var contentType = http.Request.ContentType ?? "";
        if (contentType.StartsWith("multipart/", StringComparison.OrdinalIgnoreCase))
        {
            var boundary = HeaderUtilities.RemoveQuotes(MediaTypeHeaderValue.Parse(contentType).Boundary).Value
                ?? throw Rest(400, "multipart body without a boundary");
            var reader = new MultipartReader(boundary, http.Request.Body);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            while (await reader.ReadNextSectionAsync(http.RequestAborted) is { } section)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                    || HeaderUtilities.RemoveQuotes(disposition.Name).Value != "file")
                {
                    continue;
                }

                // The filename is the whole target path, taken as sent (never reduced to its last segment).
                var path = target ?? HeaderUtilities.RemoveQuotes(disposition.FileName).Value ?? throw Rest(400, "a file part without a path");
                if (!seen.Add(path))
                {
                    throw Rest(400, $"'{path}' is written twice in one request");
                }

                await WriteAsync(path, section.Body);
            }
        }
        else
        {
            var path = target ?? throw Rest(400, "path is required for an octet-stream upload");
            var body = http.Request.Headers.ContentEncoding.ToString() switch
            {
                "" or "identity" => http.Request.Body,
                "gzip" => new GZipStream(http.Request.Body, CompressionMode.Decompress),
                var other => throw Rest(400, $"content encoding '{other}' is not supported (gzip is)"),
            };
            await WriteAsync(path, body);
        }

        return written.Count == 0 ? throw Rest(400, "no file in the request") : RunEndpoints.Json(written, StatusCodes.Status200OK);
    });

    /// <summary><c>POST /process.Process/{method}</c>: Start and Connect (streams), List, SendInput, SendSignal, CloseStdin.</summary>
    public static Task ProcessAsync(HttpContext http, string method) => RpcAsync(http, method, method switch
    {
        "Start" => StartAsync,
        "Connect" => ConnectAsync,
        "List" => (ctx, live, request) => Unary(ctx, new JsonObject
        {
            ["processes"] = new JsonArray([.. live.Commands.Where(c => !c.IsEnded).Select(c => (JsonNode)new JsonObject
            {
                ["config"] = Config(c),
                ["pid"] = c.Pid,
            })]),
        }),
        "SendInput" => (ctx, live, request) => WithProcessAsync(ctx, live, request, async command =>
        {
            var stdin = request["input"]?["stdin"]?.GetValue<string>() ?? "";
            await Service(ctx).SendInputAsync(live.TenantId, live.SandboxId, command.CommandId, Convert.FromBase64String(stdin), close: false, ctx.RequestAborted);
        }),
        "CloseStdin" => (ctx, live, request) => WithProcessAsync(ctx, live, request, command =>
            Service(ctx).SendInputAsync(live.TenantId, live.SandboxId, command.CommandId, ReadOnlyMemory<byte>.Empty, close: true, ctx.RequestAborted)),
        "SendSignal" => (ctx, live, request) => WithProcessAsync(ctx, live, request, async command =>
        {
            var signal = request["signal"] switch
            {
                JsonValue v when v.TryGetValue<string>(out var name) => name switch
                {
                    "SIGNAL_SIGKILL" => 9,
                    "SIGNAL_SIGTERM" => 15,
                    _ => throw new ConnectError("unimplemented", $"signal {name} is not supported (SIGKILL and SIGTERM are)"),
                },
                JsonValue v when v.TryGetValue<int>(out var number) && number is 9 or 15 => number,
                _ => throw new ConnectError("unimplemented", "signal is SIGNAL_SIGKILL or SIGNAL_SIGTERM"),
            };
            command.KilledOnRequest = true;
            await command.Process!.SignalAsync(signal);
        }),
        _ => null,
    });

    /// <summary><c>POST /filesystem.Filesystem/{method}</c>: Stat, ListDir, MakeDir, Move, Remove.</summary>
    public static Task FilesystemAsync(HttpContext http, string method) => RpcAsync(http, method, method switch
    {
        "Stat" => async (ctx, live, request) =>
            await Unary(ctx, new JsonObject { ["entry"] = Entry(await live.Session.StatAsync(Path(request, "path"), ctx.RequestAborted)) }),
        "ListDir" => async (ctx, live, request) =>
        {
            var depth = Math.Clamp(request["depth"]?.GetValue<int>() ?? 1, 1, 32);
            var entries = await live.Session.ListAsync(Path(request, "path"), depth, ctx.RequestAborted);
            await Unary(ctx, new JsonObject { ["entries"] = new JsonArray([.. entries.Select(e => (JsonNode)Entry(e))]) });
        },
        "MakeDir" => async (ctx, live, request) =>
            await Unary(ctx, new JsonObject { ["entry"] = Entry(await live.Session.MakeDirectoryAsync(Path(request, "path"), ctx.RequestAborted)) }),
        "Move" => async (ctx, live, request) =>
            await Unary(ctx, new JsonObject { ["entry"] = Entry(await live.Session.MoveAsync(Path(request, "source"), Path(request, "destination"), ctx.RequestAborted)) }),
        "Remove" => async (ctx, live, request) =>
        {
            await live.Session.RemoveAsync(Path(request, "path"), ctx.RequestAborted);
            await Unary(ctx, new JsonObject());
        },
        _ => null,
    });

    // Runs one RPC: reads the request (a plain JSON body, or one envelope for a stream), finds the sandbox and checks its
    // token and user, and answers errors the Connect way (a JSON error for unary calls, an end-of-stream frame for streams).
    private static async Task RpcAsync(HttpContext http, string method, Func<HttpContext, LiveSandbox, JsonNode, Task>? call)
    {
        var streaming = (http.Request.ContentType ?? "").StartsWith(ConnectJson, StringComparison.OrdinalIgnoreCase);
        try
        {
            if (call is null)
            {
                throw new ConnectError("unimplemented", $"{http.Request.Path} is not implemented by Sandstorm");
            }

            using var buffer = new MemoryStream();
            await http.Request.Body.CopyToAsync(buffer, http.RequestAborted);
            var bytes = buffer.ToArray();
            if (streaming)
            {
                if (bytes.Length < 5 || BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(1)) != bytes.Length - 5)
                {
                    throw new ConnectError("invalid_argument", "the request is not one Connect envelope");
                }

                bytes = bytes[5..];
            }

            var request = JsonNode.Parse(bytes.Length == 0 ? "{}"u8 : bytes) ?? new JsonObject();
            CheckUser(http);
            var live = await SandboxAsync(http);
            await call(http, live, request);
        }
        catch (Exception e) when (e is ConnectError or SandboxException or SandstormException or JsonException or FormatException or InvalidOperationException)
        {
            var error = e switch
            {
                ConnectError c => c,
                SandboxException s => FromSandbox(s),
                SandstormException s => FromProblem(s),
                _ => new ConnectError("invalid_argument", e.Message),
            };
            if (http.Response.HasStarted)
            {
                await WriteEndAsync(http, error);
            }
            else if (streaming)
            {
                StartStream(http);
                await WriteEndAsync(http, error);
            }
            else
            {
                http.Response.StatusCode = error.Status;
                http.Response.ContentType = "application/json";
                await http.Response.WriteAsJsonAsync(new { code = error.Code, message = error.Message }, http.RequestAborted);
            }
        }
    }

    private static async Task StartAsync(HttpContext http, LiveSandbox live, JsonNode request)
    {
        var process = request["process"] ?? throw new ConnectError("invalid_argument", "process is required");
        var cmd = process["cmd"]?.GetValue<string>() ?? throw new ConnectError("invalid_argument", "process.cmd is required");
        var args = process["args"]?.AsArray().Select(a => a!.GetValue<string>()).ToList() ?? [];
        var envs = process["envs"]?.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>());
        if (request["pty"] is not null)
        {
            throw new ConnectError("unimplemented", "terminals (pty) are not supported by Sandstorm");
        }

        var timeoutMs = http.Request.Headers["Connect-Timeout-Ms"].FirstOrDefault() is { } raw && int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var t) ? t : 0;
        var command = new CommandRequest
        {
            Cmd = args.Count >= 2 && cmd.EndsWith("bash", StringComparison.Ordinal) && args[^2] == "-c" ? args[^1] : string.Join(' ', [cmd, .. args]),
            Cwd = process["cwd"]?.GetValue<string>(),
            Env = envs,
            Stdin = request["stdin"]?.GetValue<bool>() ?? false,
            Timeout = timeoutMs,
        };
        Sandstorm.Core.Validation.SandboxRequestValidator.ThrowIfInvalid(command);
        var stream = await Service(http).StartProcessAsync(live, command, [cmd, .. args], timeoutMs, http.RequestAborted);
        await StreamAsync(http, stream, afterId: 0);
    }

    private static async Task ConnectAsync(HttpContext http, LiveSandbox live, JsonNode request)
    {
        var command = Find(live, request);
        // Live output only, from now on (no replay), after the start event of the same pid.
        await StreamAsync(http, command, command.LastEventId, forceStart: true);
    }

    // Writes a command's events as Connect frames: its start first, base64 output as it comes, its end, then end-of-stream.
    private static async Task StreamAsync(HttpContext http, CommandStream command, long afterId, bool forceStart = false)
    {
        StartStream(http);
        var body = http.Response.BodyWriter;
        var keepAlive = http.Request.Headers["Keepalive-Ping-Interval"].FirstOrDefault() is { } raw && int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : TimeSpan.FromSeconds(50);
        if (forceStart)
        {
            await FrameAsync(body, Event(new JsonObject { ["start"] = new JsonObject { ["pid"] = command.Pid } }));
        }

        await using var events = command.ReadAsync(afterId, http.RequestAborted).GetAsyncEnumerator();
        var next = events.MoveNextAsync().AsTask();
        while (true)
        {
            var idle = Task.Delay(keepAlive, http.RequestAborted);
            if (await Task.WhenAny(next, idle) == idle)
            {
                await FrameAsync(body, Event(new JsonObject { ["keepalive"] = new JsonObject() }));
                continue;
            }

            if (!await next)
            {
                break;
            }

            var e = events.Current;
            JsonObject? message = e.Kind switch
            {
                CommandEventKind.Start => new JsonObject { ["start"] = new JsonObject { ["pid"] = command.Pid } },
                CommandEventKind.Stdout => new JsonObject { ["data"] = new JsonObject { ["stdout"] = Convert.ToBase64String(e.Data.Span) } },
                CommandEventKind.Stderr => new JsonObject { ["data"] = new JsonObject { ["stderr"] = Convert.ToBase64String(e.Data.Span) } },
                CommandEventKind.End => new JsonObject { ["end"] = End(command.End!) },
                _ => null,
            };
            next = events.MoveNextAsync().AsTask();
            if (message is not null)
            {
                await FrameAsync(body, Event(message), flush: !next.IsCompleted);
            }
        }

        await body.WriteAsync(EndOfStreamOk, http.RequestAborted);
        await body.FlushAsync(http.RequestAborted);
    }

    private static JsonObject End(CommandEnd end)
    {
        var result = new JsonObject();
        if (end.ExitCode is { } code)
        {
            result["exitCode"] = code;
            result["exited"] = true;
            result["status"] = $"exit status {code}";
            if (code != 0)
            {
                result["error"] = $"exit status {code}";
            }
        }
        else
        {
            result["exitCode"] = -1;
            result["exited"] = false;
            result["status"] = "signal: killed";
            result["error"] = end.Error ?? "signal: killed";
        }

        return result;
    }

    private static JsonObject Event(JsonObject inner) => new() { ["event"] = inner };

    private static async Task FrameAsync(System.IO.Pipelines.PipeWriter body, JsonNode message, bool flush = true)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(message);
        var header = new byte[5];
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(1), (uint)json.Length);
        await body.WriteAsync(header);
        await body.WriteAsync(json);
        if (flush)
        {
            await body.FlushAsync();
        }
    }

    private static void StartStream(HttpContext http)
    {
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = ConnectJson;
        http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
    }

    private static async Task WriteEndAsync(HttpContext http, ConnectError error)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(new { error = new { code = error.Code, message = error.Message } });
        var header = new byte[5];
        header[0] = 0x02;
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(1), (uint)json.Length);
        await http.Response.Body.WriteAsync(header);
        await http.Response.Body.WriteAsync(json);
    }

    private static Task Unary(HttpContext http, JsonNode answer)
    {
        http.Response.StatusCode = StatusCodes.Status200OK;
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(answer.ToJsonString(), http.RequestAborted);
    }

    private static async Task WithProcessAsync(HttpContext http, LiveSandbox live, JsonNode request, Func<CommandStream, Task> action)
    {
        try
        {
            await action(Find(live, request));
        }
        catch (SandstormException e) when (e.Status == 409)
        {
            // Stdin was not kept open, or is closed: envd says so as an internal error.
            throw new ConnectError("internal", "error writing to stdin: " + e.Message);
        }

        await Unary(http, new JsonObject());
    }

    private static CommandStream Find(LiveSandbox live, JsonNode request)
    {
        var selector = request["process"] ?? throw new ConnectError("invalid_argument", "process is required");
        if (selector["pid"] is { } pid && live.CommandByPid(pid.GetValue<int>()) is { } command)
        {
            return command;
        }

        throw new ConnectError("not_found", selector["pid"] is { } p ? $"process with pid {p} not found" : "process not found (select it by pid)");
    }

    private static JsonObject Config(CommandStream c)
    {
        var config = new JsonObject
        {
            ["cmd"] = c.Arguments.FirstOrDefault() ?? "/bin/bash",
            ["args"] = new JsonArray([.. c.Arguments.Skip(1).Select(a => (JsonNode)JsonValue.Create(a)!)]),
            ["envs"] = new JsonObject([.. (c.Request.Env ?? new Dictionary<string, string>()).Select(e => new KeyValuePair<string, JsonNode?>(e.Key, e.Value))]),
        };
        if (c.Request.Cwd is { } cwd)
        {
            config["cwd"] = cwd;
        }

        return config;
    }

    private static JsonObject Entry(SandboxFileInfo e)
    {
        var entry = new JsonObject
        {
            ["name"] = e.Name,
            ["type"] = e.Type switch { "dir" => "FILE_TYPE_DIRECTORY", "symlink" => "FILE_TYPE_SYMLINK", _ => "FILE_TYPE_FILE" },
            ["path"] = e.Path,
            ["size"] = e.Size.ToString(CultureInfo.InvariantCulture),
            ["mode"] = e.Mode,
            ["permissions"] = e.Permissions,
            ["owner"] = e.Owner,
            ["group"] = e.Group,
            ["modifiedTime"] = e.Modified.ToString("yyyy-MM-dd'T'HH:mm:ss.fffK", CultureInfo.InvariantCulture),
        };
        if (e.SymlinkTarget is { } target)
        {
            entry["symlinkTarget"] = target;
        }

        return entry;
    }

    private static string Path(JsonNode request, string field) =>
        request[field]?.GetValue<string>() is { Length: > 0 } path ? path : throw new ConnectError("invalid_argument", $"{field} is required");

    private static async Task<LiveSandbox> SandboxAsync(HttpContext http)
    {
        var id = http.Request.Headers[SandboxHeader].FirstOrDefault()
            ?? throw new ConnectError("invalid_argument", $"the {SandboxHeader} header names the sandbox");
        return await Service(http).LiveByTokenAsync(Client(http), id, http.Request.Headers["X-Access-Token"].FirstOrDefault(), http.RequestAborted)
            ?? throw new ConnectError("unauthenticated", "unauthorized access, please provide a valid access token for the sandbox");
    }

    // /files accepts the sandbox's token, or a URL signed with it (E2B's uploadUrl/downloadUrl), and user "user" only.
    private static async Task<LiveSandbox> SandboxForFilesAsync(HttpContext http, string? path, string operation)
    {
        var user = http.Request.Query["username"].FirstOrDefault();
        if (user is not (null or KeptSandboxUser))
        {
            throw Rest(401, $"user '{user}' does not exist: Sandstorm sandboxes have one user, '{KeptSandboxUser}'");
        }

        var id = http.Request.Headers[SandboxHeader].FirstOrDefault() ?? throw Rest(400, $"the {SandboxHeader} header names the sandbox");
        var token = http.Request.Headers["X-Access-Token"].FirstOrDefault();
        var service = Service(http);
        if (token is null && http.Request.Query["signature"].FirstOrDefault() is { } signature)
        {
            var tenant = await http.RequestServices.GetRequiredService<Storage.Sandboxes.SandboxStore>().TenantOfAsync(id, http.RequestAborted);
            var record = tenant is null ? null : await service.RecordAsync(tenant, id, http.RequestAborted);
            if (record?.AccessToken is { } key && Signed(signature, http.Request.Query["signature_expiration"].FirstOrDefault(), path ?? "", operation, user, key))
            {
                token = key;
            }
        }

        return await service.LiveByTokenAsync(Client(http), id, token, http.RequestAborted)
            ?? throw Rest(401, "unauthorized access, please provide a valid access token or method signing if supported");
    }

    private static bool Signed(string signature, string? expiration, string path, string operation, string? user, string key)
    {
        var raw = $"{path}:{operation}:{user ?? ""}:{key}";
        if (expiration is not null)
        {
            if (!long.TryParse(expiration, NumberStyles.None, CultureInfo.InvariantCulture, out var until) || DateTimeOffset.FromUnixTimeSeconds(until) < DateTimeOffset.UtcNow)
            {
                return false;
            }

            raw += ":" + expiration;
        }

        var expected = "v1_" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(raw))).TrimEnd('=');
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(signature));
    }

    private static void CheckUser(HttpContext http)
    {
        var authorization = http.Request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            var user = Encoding.UTF8.GetString(Convert.FromBase64String(authorization[6..].Trim())).Split(':')[0];
            if (user != KeptSandboxUser)
            {
                throw new ConnectError("unauthenticated", $"user '{user}' does not exist: Sandstorm sandboxes have one user, '{KeptSandboxUser}'");
            }
        }
    }

    private const string KeptSandboxUser = "user";

    private static SandstormException Rest(int status, string message) => new(status == 401 ? ErrorCodes.Unauthorized : ErrorCodes.ValidationFailed, message, status);

    private static SandstormException RestError(SandboxException e) => e.Code switch
    {
        SandboxErrors.NotFound => Rest(404, e.Message),
        SandboxErrors.NoSpace => new(ErrorCodes.NoSpace, e.Message, 507),
        SandboxErrors.Gone => new(ErrorCodes.SandboxEnded, e.Message, 502),
        SandboxErrors.TooLarge => new(ErrorCodes.PayloadTooLarge, e.Message, 413),
        SandboxErrors.Io => new(ErrorCodes.Internal, e.Message, 500),
        _ => Rest(400, e.Message),
    };

    private static ConnectError FromSandbox(SandboxException e) => e.Code switch
    {
        SandboxErrors.NotFound => new("not_found", e.Message),
        SandboxErrors.Exists => new("already_exists", e.Message),
        SandboxErrors.Denied => new("permission_denied", e.Message),
        SandboxErrors.NoSpace or SandboxErrors.TooLarge => new("resource_exhausted", e.Message),
        SandboxErrors.NoStdin => new("internal", "error writing to stdin: " + e.Message),
        SandboxErrors.Gone => new("unavailable", e.Message),
        SandboxErrors.Io => new("internal", e.Message),
        _ => new("invalid_argument", e.Message),
    };

    private static ConnectError FromProblem(SandstormException e) => e.Status switch
    {
        404 => new("not_found", e.Message),
        401 => new("unauthenticated", e.Message),
        403 => new("permission_denied", e.Message),
        409 => new("already_exists", e.Message),
        410 or 502 => new("unavailable", e.Message),
        429 or 507 or 413 => new("resource_exhausted", e.Message),
        >= 500 => new("internal", e.Message),
        _ => new("invalid_argument", e.Message),
    };

    private static SandboxService Service(HttpContext http) => http.RequestServices.GetRequiredService<SandboxService>();

    private static DurableTaskClient? Client(HttpContext http) => http.RequestServices.GetService<DurableTaskClient>();

    /// <summary>A Connect error: its string code, the HTTP status of that code for a unary call, and a message.</summary>
    private sealed class ConnectError : Exception
    {
        public ConnectError(string code, string message)
            : base(message)
        {
            Code = code;
        }

        public ConnectError()
            : this("internal", "internal error")
        {
        }

        public ConnectError(string message)
            : this("internal", message)
        {
        }

        public ConnectError(string message, Exception innerException)
            : base(message, innerException)
        {
            Code = "internal";
        }

        public string Code { get; }

        public int Status => Code switch
        {
            "canceled" => 499,
            "invalid_argument" or "failed_precondition" or "out_of_range" => 400,
            "deadline_exceeded" => 504,
            "not_found" => 404,
            "already_exists" or "aborted" => 409,
            "permission_denied" => 403,
            "resource_exhausted" => 429,
            "unimplemented" => 501,
            "unavailable" => 503,
            "unauthenticated" => 401,
            _ => 500,
        };
    }
}
