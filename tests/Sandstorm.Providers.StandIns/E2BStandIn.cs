using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Sandstorm.Providers.StandIns;

/// <summary>
/// Stand-in for E2B (a remote service we cannot reach): the control plane (<c>/v2/sandboxes</c>, <c>/sandboxes/{id}</c>)
/// and envd (<c>/files</c>, Connect <c>/process.Process/Start</c>) on one server, as E2B_SANDBOX_URL lets the SDK address it.
/// Commands really run as local child processes. Checked against the official <c>e2b</c> SDK by a test.
/// Fault operations: create, get, delete, timeout, files, start.
/// </summary>
public sealed class E2BStandIn : IAsyncDisposable
{
    public const string ApiKey = "e2b_0123456789abcdef0123456789abcdef01234567";
    private const string SandboxHome = "/home/user";

    private readonly ConcurrentDictionary<string, Sandbox> _sandboxes = new();
    private StandInHost? _host;
    private int _next;

    public FaultPlan Faults { get; } = new();

    public Uri BaseUrl => _host!.BaseUrl;

    public int Live => _sandboxes.Count;

    public List<string> Requests { get; } = [];

    public static async Task<E2BStandIn> StartAsync()
    {
        var standIn = new E2BStandIn();
        standIn._host = await StandInHost.StartAsync(standIn.Map);
        return standIn;
    }

    public bool Exists(string sandboxId) => _sandboxes.ContainsKey(sandboxId);

    private void Map(WebApplication app)
    {
        app.Use(async (http, next) =>
        {
            lock (Requests)
            {
                Requests.Add($"{http.Request.Method} {http.Request.Path}");
            }

            await next(http);
        });

        app.MapPost("/v2/sandboxes", async (HttpContext http) =>
        {
            if (!ApiKeyOk(http) || await FaultPlan.ApplyHttpAsync(Faults.Next("create"), http))
            {
                return;
            }

            var body = await JsonNode.ParseAsync(http.Request.Body);
            var id = $"sbx{Interlocked.Increment(ref _next):x4}standin";
            var sandbox = new Sandbox(id, Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant(), new SandboxFs(SandboxHome))
            {
                Template = body?["templateID"]?.GetValue<string>() ?? "base",
                TimeoutSeconds = body?["timeout"]?.GetValue<int>() ?? 300,
            };
            _sandboxes[id] = sandbox;
            http.Response.StatusCode = 201;
            await http.Response.WriteAsJsonAsync(Describe(sandbox));
        });

        app.MapGet("/sandboxes/{id}", async (HttpContext http, string id) =>
        {
            if (!ApiKeyOk(http) || await FaultPlan.ApplyHttpAsync(Faults.Next("get"), http))
            {
                return;
            }

            if (!_sandboxes.TryGetValue(id, out var sandbox))
            {
                await NotFound(http, id);
                return;
            }

            await http.Response.WriteAsJsonAsync(Describe(sandbox));
        });

        app.MapDelete("/sandboxes/{id}", async (HttpContext http, string id) =>
        {
            if (!ApiKeyOk(http) || await FaultPlan.ApplyHttpAsync(Faults.Next("delete"), http))
            {
                return;
            }

            if (!_sandboxes.TryRemove(id, out var sandbox))
            {
                await NotFound(http, id);
                return;
            }

            sandbox.Kill();
            http.Response.StatusCode = 204;
        });

        app.MapPost("/sandboxes/{id}/timeout", async (HttpContext http, string id) =>
        {
            if (!ApiKeyOk(http) || await FaultPlan.ApplyHttpAsync(Faults.Next("timeout"), http))
            {
                return;
            }

            if (!_sandboxes.TryGetValue(id, out var sandbox))
            {
                await NotFound(http, id);
                return;
            }

            sandbox.TimeoutSeconds = (await JsonNode.ParseAsync(http.Request.Body))?["timeout"]?.GetValue<int>() ?? sandbox.TimeoutSeconds;
            http.Response.StatusCode = 204;
        });

        // envd: file upload (multipart "file" parts; a single part may take its path from ?path=).
        app.MapPost("/files", async (HttpContext http) =>
        {
            var sandbox = await EnvdSandboxAsync(http);
            if (sandbox is null || await FaultPlan.ApplyHttpAsync(Faults.Next("files"), http))
            {
                return;
            }

            var form = await http.Request.ReadFormAsync();
            var queryPath = http.Request.Query["path"].ToString();
            var written = new JsonArray();
            foreach (var file in form.Files.Where(f => f.Name == "file"))
            {
                var path = form.Files.Count == 1 && queryPath.Length > 0 ? queryPath : file.FileName;
                using var ms = new MemoryStream();
                await file.CopyToAsync(ms);
                sandbox.Fs.Write(path, ms.ToArray());
                written.Add(new JsonObject { ["name"] = Path.GetFileName(path), ["type"] = "file", ["path"] = path });
            }

            await http.Response.WriteAsJsonAsync(written);
        });

        app.MapGet("/health", () => Results.NoContent());

        // envd: Connect server-streaming process start.
        app.MapPost("/process.Process/Start", StartProcessAsync);
    }

    private async Task StartProcessAsync(HttpContext http)
    {
        var sandbox = await EnvdSandboxAsync(http);
        if (sandbox is null)
        {
            return;
        }

        if (!http.Request.ContentType!.StartsWith("application/connect+json", StringComparison.Ordinal))
        {
            http.Response.StatusCode = 415;
            return;
        }

        var fault = Faults.Next("start");
        if (await FaultPlan.ApplyHttpAsync(fault, http))
        {
            return;
        }

        // The request of a streaming procedure is one enveloped message.
        var header = new byte[5];
        await http.Request.Body.ReadExactlyAsync(header);
        var payload = new byte[BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1))];
        await http.Request.Body.ReadExactlyAsync(payload);
        var request = JsonNode.Parse(payload)!;
        var process = request["process"]!;
        var cmd = process["cmd"]!.GetValue<string>();
        var args = process["args"]?.AsArray().Select(a => a!.GetValue<string>()).ToArray() ?? [];
        var cwd = process["cwd"]?.GetValue<string>() ?? SandboxHome;
        var envs = process["envs"]?.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>()) ?? [];

        http.Response.StatusCode = 200;
        http.Response.ContentType = "application/connect+json";
        var writeGate = new SemaphoreSlim(1, 1);
        async Task Send(object message, byte flags = 0)
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(message);
            var frame = new byte[5 + bytes.Length];
            frame[0] = flags;
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)bytes.Length);
            bytes.CopyTo(frame, 5);
            await writeGate.WaitAsync();
            try
            {
                await http.Response.Body.WriteAsync(frame);
                await http.Response.Body.FlushAsync();
            }
            finally
            {
                writeGate.Release();
            }
        }

        Directory.CreateDirectory(sandbox.Fs.Map(cwd));
        using var exec = LocalExec.Start(cmd, args, sandbox.Fs.Map(cwd), envs, sandbox.Fs.Home);
        sandbox.Running = exec;
        await Send(new { @event = new { start = new { pid = exec.Pid } } });

        if (fault?.Kind == FaultKind.Silent)
        {
            // A stuck stream: started, then nothing — no output, no keepalive — until the client gives up.
            await Task.Delay(Timeout.Infinite, http.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
            return;
        }

        var chunks = 0;
        using var keepaliveStop = new CancellationTokenSource();
        var interval = int.TryParse(http.Request.Headers["Keepalive-Ping-Interval"], out var s) ? s : 0;
        var keepalive = interval > 0
            ? Task.Run(async () =>
            {
                using var timer = new PeriodicTimer(TimeSpan.FromSeconds(interval));
                while (await timer.WaitForNextTickAsync(keepaliveStop.Token).AsTask().ContinueWith(t => !t.IsCanceled && t.Result, TaskScheduler.Default))
                {
                    await Send(new { @event = new { keepalive = new { } } });
                }
            })
            : Task.CompletedTask;

        int? exit;
        try
        {
            exit = await exec.PumpAsync(async (isErr, chunk) =>
            {
                await Send(new { @event = new { data = isErr ? (object)new { stderr = Convert.ToBase64String(chunk) } : new { stdout = Convert.ToBase64String(chunk) } } });
                chunks++;
                if (fault?.Kind == FaultKind.CutStream && chunks == 1)
                {
                    // The connection drops mid-output.
                    exec.Kill();
                    http.Abort();
                }
                else if (fault?.Kind == FaultKind.Die && chunks == 1)
                {
                    // The sandbox dies under the process.
                    exec.Kill();
                    _sandboxes.TryRemove(sandbox.Id, out _);
                }
            }, TimeSpan.FromMinutes(2), http.RequestAborted);
        }
        finally
        {
            await keepaliveStop.CancelAsync();
            await keepalive;
        }

        if (fault?.Kind == FaultKind.CutStream)
        {
            return;
        }

        if (fault?.Kind == FaultKind.Die)
        {
            await Send(new { error = new { code = "unavailable", message = "sandbox not running: it was killed" } }, flags: 0x02);
            return;
        }

        await Send(new { @event = new { end = new { exitCode = exit ?? -1, exited = exit is not null, status = exit is null ? "signal: killed" : $"exit status {exit}" } } });
        await Send(new { }, flags: 0x02);
    }

    private async Task<Sandbox?> EnvdSandboxAsync(HttpContext http)
    {
        var id = http.Request.Headers["E2b-Sandbox-Id"].ToString();
        if (!_sandboxes.TryGetValue(id, out var sandbox))
        {
            // What E2B's edge answers for a sandbox that is gone.
            http.Response.StatusCode = 502;
            await http.Response.WriteAsJsonAsync(new { message = "The sandbox was not found", sandboxId = id, code = 502 });
            return null;
        }

        if (http.Request.Headers["X-Access-Token"] != sandbox.AccessToken)
        {
            http.Response.StatusCode = 401;
            await http.Response.WriteAsJsonAsync(new { code = 401, message = "invalid access token" });
            return null;
        }

        return sandbox;
    }

    private static bool ApiKeyOk(HttpContext http)
    {
        if (http.Request.Headers["X-API-Key"] == ApiKey)
        {
            return true;
        }

        http.Response.StatusCode = 401;
        http.Response.WriteAsJsonAsync(new { code = 401, message = "Invalid API key" }).GetAwaiter().GetResult();
        return false;
    }

    private static Task NotFound(HttpContext http, string id)
    {
        http.Response.StatusCode = 404;
        return http.Response.WriteAsJsonAsync(new { code = 404, message = $"sandbox \"{id}\" doesn't exist or you don't have access to it" });
    }

    private static object Describe(Sandbox s) => new
    {
        templateID = s.Template,
        sandboxID = s.Id,
        clientID = "standin",
        envdVersion = "0.5.4",
        envdAccessToken = s.AccessToken,
        domain = (string?)null,
        state = "running",
        cpuCount = 2,
        memoryMB = 512,
        startedAt = DateTimeOffset.UtcNow,
        endAt = DateTimeOffset.UtcNow.AddSeconds(s.TimeoutSeconds),
        metadata = new Dictionary<string, string>(),
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var s in _sandboxes.Values)
        {
            s.Kill();
        }

        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        foreach (var s in _sandboxes.Values)
        {
            s.Fs.Dispose();
        }
    }

    private sealed class Sandbox(string id, string accessToken, SandboxFs fs)
    {
        public string Id { get; } = id;

        public string AccessToken { get; } = accessToken;

        public SandboxFs Fs { get; } = fs;

        public string Template { get; init; } = "base";

        public int TimeoutSeconds { get; set; }

        public LocalExec? Running { get; set; }

        public void Kill() => Running?.Kill();
    }
}
