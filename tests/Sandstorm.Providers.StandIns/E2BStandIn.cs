using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Sandstorm.Providers.StandIns;

/// <summary>
/// Stand-in for E2B (a remote service we cannot reach): the control plane (<c>/v2/sandboxes</c>, <c>/sandboxes/{id}</c>)
/// and envd (<c>/files</c>, Connect <c>/process.Process/Start</c> and <c>/process.Process/Connect</c>) on one server, as
/// E2B_SANDBOX_URL lets the SDK address it. Commands really run as local child processes and, as in envd, outlive the
/// stream that started them: a client can reattach by pid or tag, and receives what the process writes from then on
/// (envd does not replay). Checked against the official <c>e2b</c> SDK by a test.
/// Fault operations: create, list, get, delete, timeout, files, start, connect.
/// </summary>
public sealed class E2BStandIn : ICloudStandIn
{
    public const string ApiKey = "e2b_0123456789abcdef0123456789abcdef01234567";
    private const string SandboxHome = "/home/user";
    private const string RunTag = "sandstorm.run";

    private readonly ConcurrentDictionary<string, Sandbox> _sandboxes = new();
    private readonly ConcurrentDictionary<string, int> _executionsByRun = new();
    private StandInHost? _host;
    private int _next;
    private int _executions;
    private int _pids = 1000;
    private int _reattached;

    public string Provider => "e2b";

    public FaultPlan Faults { get; } = new(new Dictionary<CloudStep, string>
    {
        [CloudStep.Create] = "create",
        [CloudStep.Start] = "start",
        // The output streams on the start call itself: CutStream and Silent act there.
        [CloudStep.Stream] = "start",
        [CloudStep.Release] = "delete",
    });

    public Uri BaseUrl => _host!.BaseUrl;

    public int Live => _sandboxes.Count;

    public int Executions => _executions;

    /// <summary>Times a client reattached to a running process (a Connect that found it and is following it).</summary>
    public int Reattached => _reattached;

    public List<string> Requests { get; } = [];

    public static async Task<E2BStandIn> StartAsync()
    {
        var standIn = new E2BStandIn();
        standIn._host = await StandInHost.StartAsync(standIn.Map);
        return standIn;
    }

    public bool Exists(string sandboxId) => _sandboxes.ContainsKey(sandboxId);

    public int ExecutionsFor(string runId) => _executionsByRun.GetValueOrDefault(runId);

    public int LiveFor(string runId) => _sandboxes.Values.Count(s => s.Metadata.GetValueOrDefault(RunTag) == runId);

    /// <summary>Processes running in a sandbox now.</summary>
    public int Running(string sandboxId) => _sandboxes.TryGetValue(sandboxId, out var s) ? s.Processes.Count : 0;

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
            var fault = Faults.Next("create");
            if (!ApiKeyOk(http) || await FaultPlan.ApplyHttpAsync(fault, http))
            {
                return;
            }

            var body = await JsonNode.ParseAsync(http.Request.Body);
            var id = $"sbx{Interlocked.Increment(ref _next):x4}standin";
            var sandbox = new Sandbox(id, Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant(), new SandboxFs(SandboxHome))
            {
                Template = body?["templateID"]?.GetValue<string>() ?? "base",
                TimeoutSeconds = body?["timeout"]?.GetValue<int>() ?? 300,
                Metadata = body?["metadata"]?.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>()) ?? [],
            };
            _sandboxes[id] = sandbox;
            if (await FaultPlan.ApplyAfterAsync(fault, http))
            {
                return;
            }

            http.Response.StatusCode = 201;
            await http.Response.WriteAsJsonAsync(Describe(sandbox));
        });

        // List: metadata filter "k=v&k2=v2" (keys and values URL-encoded), states as a comma list.
        app.MapGet("/v2/sandboxes", async (HttpContext http) =>
        {
            if (!ApiKeyOk(http) || await FaultPlan.ApplyHttpAsync(Faults.Next("list"), http))
            {
                return;
            }

            var filter = http.Request.Query["metadata"].ToString()
                .Split('&', StringSplitOptions.RemoveEmptyEntries)
                .Select(pair => pair.Split('=', 2))
                .ToDictionary(kv => Uri.UnescapeDataString(kv[0]), kv => kv.Length > 1 ? Uri.UnescapeDataString(kv[1]) : "");
            var listed = _sandboxes.Values
                .Where(s => filter.All(f => s.Metadata.GetValueOrDefault(f.Key) == f.Value))
                .Select(s => new { templateID = s.Template, sandboxID = s.Id, clientID = "standin", startedAt = DateTimeOffset.UtcNow, endAt = DateTimeOffset.UtcNow.AddSeconds(s.TimeoutSeconds), cpuCount = 2, memoryMB = 512, diskSizeMB = 512, state = "running", envdVersion = "0.5.4", metadata = s.Metadata });
            await http.Response.WriteAsJsonAsync(listed);
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
            var fault = Faults.Next("delete");
            if (!ApiKeyOk(http) || await FaultPlan.ApplyHttpAsync(fault, http))
            {
                return;
            }

            if (!_sandboxes.TryRemove(id, out var sandbox))
            {
                await NotFound(http, id);
                return;
            }

            sandbox.Kill();
            if (await FaultPlan.ApplyAfterAsync(fault, http))
            {
                return;
            }

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

        // envd: Connect server-streaming process start, and reattaching to a running process.
        app.MapPost("/process.Process/Start", StartProcessAsync);
        app.MapPost("/process.Process/Connect", ConnectProcessAsync);
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
        if (fault?.Kind == FaultKind.Refuse)
        {
            // What envd answers when it cannot launch the process: an error, and no start event.
            var refusal = new EnvdStream(http);
            await refusal.StartAsync();
            await refusal.SendAsync(new { error = new { code = "invalid_argument", message = "error starting process: fork/exec: no such file or directory" } }, flags: 0x02);
            return;
        }

        if (await FaultPlan.ApplyHttpAsync(fault, http))
        {
            return;
        }

        var request = await ReadEnvelopeAsync(http);
        var process = request["process"]!;
        var cmd = process["cmd"]!.GetValue<string>();
        var args = process["args"]?.AsArray().Select(a => a!.GetValue<string>()).ToArray() ?? [];
        var cwd = process["cwd"]?.GetValue<string>() ?? SandboxHome;
        var envs = process["envs"]?.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>()) ?? [];
        var tag = request["tag"]?.GetValue<string>();

        Directory.CreateDirectory(sandbox.Fs.Map(cwd));
        var running = Launch(sandbox, cmd, args, cwd, envs, tag, out var events);
        if (await FaultPlan.ApplyAfterAsync(fault, http))
        {
            // The process runs on without anyone listening, as envd's do when their stream goes.
            running.Unsubscribe(events);
            return;
        }

        var stream = new EnvdStream(http);
        await stream.StartAsync();
        await stream.SendAsync(new { @event = new { start = new { pid = running.Pid } } });
        if (fault?.Kind == FaultKind.Silent)
        {
            // A stuck stream: started, then nothing — no output, no keepalive — until the client gives up.
            running.Unsubscribe(events);
            await FaultPlan.HangAsync(http.RequestAborted);
            return;
        }

        await ForwardAsync(stream, sandbox, running, events, fault);
    }

    private async Task ConnectProcessAsync(HttpContext http)
    {
        var sandbox = await EnvdSandboxAsync(http);
        if (sandbox is null || await FaultPlan.ApplyHttpAsync(Faults.Next("connect"), http))
        {
            return;
        }

        var selector = (await ReadEnvelopeAsync(http))["process"];
        var tag = selector?["tag"]?.GetValue<string>();
        var pid = selector?["pid"]?.GetValue<int>();
        var running = sandbox.Processes.Values.FirstOrDefault(p => (tag is not null && p.Tag == tag) || (pid is not null && p.Pid == pid));
        var events = running?.Subscribe();
        var stream = new EnvdStream(http);
        await stream.StartAsync();
        if (running is null || events is null)
        {
            // What envd answers for a process that is not running (ended, or never started).
            await stream.SendAsync(new { error = new { code = "not_found", message = $"process with {(tag is not null ? "tag " + tag : "pid " + pid)} not found" } }, flags: 0x02);
            return;
        }

        await stream.SendAsync(new { @event = new { start = new { pid = running.Pid } } });
        Interlocked.Increment(ref _reattached);
        await ForwardAsync(stream, sandbox, running, events, fault: null);
    }

    /// <summary>Sends the process's events to one client (with keepalives) until it ends, the client goes or a fault strikes.</summary>
    private async Task ForwardAsync(EnvdStream stream, Sandbox sandbox, EnvdProcess running, ChannelReader<ProcessEvent> events, Fault? fault)
    {
        var http = stream.Http;
        using var keepaliveStop = new CancellationTokenSource();
        var interval = int.TryParse(http.Request.Headers["Keepalive-Ping-Interval"], out var s) ? s : 0;
        var keepalive = interval > 0
            ? Task.Run(async () =>
            {
                using var timer = new PeriodicTimer(TimeSpan.FromSeconds(interval));
                while (await timer.WaitForNextTickAsync(keepaliveStop.Token).AsTask().ContinueWith(t => !t.IsCanceled && t.Result, TaskScheduler.Default))
                {
                    await stream.TrySendAsync(new { @event = new { keepalive = new { } } });
                }
            })
            : Task.CompletedTask;

        try
        {
            var chunks = 0;
            await foreach (var ev in events.ReadAllAsync(http.RequestAborted).WithCancellationSafe())
            {
                if (ev.Ended)
                {
                    var exit = ev.ExitCode;
                    await stream.SendAsync(new { @event = new { end = new { exitCode = exit ?? -1, exited = exit is not null, status = exit is null ? "signal: killed" : $"exit status {exit}" } } });
                    await stream.SendAsync(new { }, flags: 0x02);
                    return;
                }

                await stream.SendAsync(new { @event = new { data = ev.IsStderr ? (object)new { stderr = Convert.ToBase64String(ev.Data!) } : new { stdout = Convert.ToBase64String(ev.Data!) } } });
                chunks++;
                if (fault?.Kind == FaultKind.CutStream && chunks == 1)
                {
                    // The connection drops mid-output; the process goes on.
                    http.Abort();
                    return;
                }

                if (fault?.Kind == FaultKind.Die && chunks == 1)
                {
                    // The sandbox dies under the process.
                    _sandboxes.TryRemove(sandbox.Id, out _);
                    sandbox.Kill();
                    await stream.SendAsync(new { error = new { code = "unavailable", message = "sandbox not running: it was killed" } }, flags: 0x02);
                    return;
                }
            }
        }
        finally
        {
            running.Unsubscribe(events);
            await keepaliveStop.CancelAsync();
            await keepalive;
        }
    }

    /// <summary>Starts a process in the sandbox, counted as an execution, with one listener attached before any output.</summary>
    private EnvdProcess Launch(Sandbox sandbox, string cmd, string[] args, string cwd, Dictionary<string, string> envs, string? tag, out ChannelReader<ProcessEvent> events)
    {
        Interlocked.Increment(ref _executions);
        if (sandbox.Metadata.GetValueOrDefault(RunTag) is { } run)
        {
            _executionsByRun.AddOrUpdate(run, 1, (_, n) => n + 1);
        }

        var exec = LocalExec.Start(cmd, args, sandbox.Fs.Map(cwd), envs, sandbox.Fs.Home);
        var running = new EnvdProcess(Interlocked.Increment(ref _pids), tag, exec);
        events = running.Subscribe()!;
        sandbox.Processes[running.Pid] = running;
        _ = Task.Run(async () =>
        {
            var exit = await exec.PumpAsync((isErr, chunk) =>
            {
                running.Publish(new ProcessEvent(isErr, chunk, null, Ended: false));
                return Task.CompletedTask;
            }, TimeSpan.FromMinutes(2), CancellationToken.None);
            sandbox.Processes.TryRemove(running.Pid, out _);
            running.End(exit);
            exec.Dispose();
        });
        return running;
    }

    private static async Task<JsonNode> ReadEnvelopeAsync(HttpContext http)
    {
        // The request of a streaming procedure is one enveloped message.
        var header = new byte[5];
        await http.Request.Body.ReadExactlyAsync(header);
        var payload = new byte[BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(1))];
        await http.Request.Body.ReadExactlyAsync(payload);
        return JsonNode.Parse(payload)!;
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
        metadata = s.Metadata,
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

        public Dictionary<string, string> Metadata { get; init; } = [];

        public ConcurrentDictionary<int, EnvdProcess> Processes { get; } = new();

        public void Kill()
        {
            foreach (var p in Processes.Values)
            {
                p.Kill();
            }
        }
    }

    /// <summary>One event of a process: a chunk of output, or its end (exit code null when killed by a signal).</summary>
    private sealed record ProcessEvent(bool IsStderr, byte[]? Data, int? ExitCode, bool Ended);

    /// <summary>A running process and whoever listens to it now: output goes to current listeners only (no replay).</summary>
    private sealed class EnvdProcess(int pid, string? tag, LocalExec exec)
    {
        private readonly Lock _gate = new();
        private readonly List<Channel<ProcessEvent>> _listeners = [];
        private bool _ended;

        public int Pid { get; } = pid;

        public string? Tag { get; } = tag;

        /// <summary>A new listener; null when the process has already ended.</summary>
        public ChannelReader<ProcessEvent>? Subscribe()
        {
            lock (_gate)
            {
                if (_ended)
                {
                    return null;
                }

                var channel = Channel.CreateUnbounded<ProcessEvent>();
                _listeners.Add(channel);
                return channel.Reader;
            }
        }

        public void Unsubscribe(ChannelReader<ProcessEvent> reader)
        {
            lock (_gate)
            {
                _listeners.RemoveAll(c => c.Reader == reader);
            }
        }

        public void Publish(ProcessEvent ev)
        {
            lock (_gate)
            {
                foreach (var listener in _listeners)
                {
                    listener.Writer.TryWrite(ev);
                }
            }
        }

        public void End(int? exit)
        {
            lock (_gate)
            {
                _ended = true;
                foreach (var listener in _listeners)
                {
                    listener.Writer.TryWrite(new ProcessEvent(false, null, exit, Ended: true));
                    listener.Writer.TryComplete();
                }

                _listeners.Clear();
            }
        }

        public void Kill() => exec.Kill();
    }

    /// <summary>The response side of one Connect server stream: enveloped JSON messages, written one at a time.</summary>
    private sealed class EnvdStream(HttpContext http)
    {
        private readonly SemaphoreSlim _gate = new(1, 1);

        public HttpContext Http { get; } = http;

        public async Task StartAsync()
        {
            Http.Response.StatusCode = 200;
            Http.Response.ContentType = "application/connect+json";
            await Http.Response.StartAsync();
        }

        public async Task SendAsync(object message, byte flags = 0)
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(message);
            var frame = new byte[5 + bytes.Length];
            frame[0] = flags;
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)bytes.Length);
            bytes.CopyTo(frame, 5);
            await _gate.WaitAsync();
            try
            {
                await Http.Response.Body.WriteAsync(frame);
                await Http.Response.Body.FlushAsync();
            }
            finally
            {
                _gate.Release();
            }
        }

        /// <summary>Sends unless the client is gone.</summary>
        public async Task TrySendAsync(object message)
        {
            try
            {
                await SendAsync(message);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
            {
                // The stream is over.
            }
        }
    }
}

internal static class AsyncEnumerableExtensions
{
    /// <summary>Ends the enumeration quietly when its cancellation fires (the client went away).</summary>
    public static async IAsyncEnumerable<T> WithCancellationSafe<T>(this IAsyncEnumerable<T> source)
    {
        var enumerator = source.GetAsyncEnumerator();
        try
        {
            while (true)
            {
                bool moved;
                try
                {
                    moved = await enumerator.MoveNextAsync();
                }
                catch (OperationCanceledException)
                {
                    yield break;
                }

                if (!moved)
                {
                    yield break;
                }

                yield return enumerator.Current;
            }
        }
        finally
        {
            await enumerator.DisposeAsync();
        }
    }
}
