using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Sandstorm.Providers.StandIns;

/// <summary>
/// Stand-in for Daytona (remote, unreachable from here): the API (<c>/sandbox</c>, answering 200 on create, names unique
/// with 409 on a taken one, lookups by id or name, a list filtered by labels) and the toolbox under
/// <c>{base}/toolbox/{id}/...</c>, which the sandboxes advertise as their toolboxProxyUrl. Commands run locally via
/// <c>sh -c</c> with stdout and stderr combined, as the daemon does; a command whose connection is dropped runs on to its end.
/// Checked against the official SDK by a test. Fault operations: create, list, get, delete, upload, execute.
/// </summary>
public sealed class DaytonaStandIn : ICloudStandIn
{
    public const string ApiKey = "dtn_standin_key";
    private const string Home = "/home/daytona";
    private const string RunLabel = "sandstorm.run";

    private readonly ConcurrentDictionary<string, Sandbox> _sandboxes = new();
    private readonly ConcurrentDictionary<string, int> _executionsByRun = new();
    private StandInHost? _host;
    private int _next;
    private int _executions;

    public string Provider => "daytona";

    public FaultPlan Faults { get; } = new(new Dictionary<CloudStep, string>
    {
        [CloudStep.Create] = "create",
        // One synchronous call starts the command and returns its output.
        [CloudStep.Start] = "execute",
        [CloudStep.Release] = "delete",
    });

    public Uri BaseUrl => _host!.BaseUrl;

    public int Live => _sandboxes.Count;

    public int Executions => _executions;

    public int ExecutionsFor(string runId) => _executionsByRun.GetValueOrDefault(runId);

    public int LiveFor(string runId) => _sandboxes.Values.Count(s => s.Labels.GetValueOrDefault(RunLabel) == runId);

    /// <summary>State a created sandbox reports first; "starting" makes clients poll.</summary>
    public string InitialState { get; set; } = "started";

    public List<string> Requests { get; } = [];

    public static async Task<DaytonaStandIn> StartAsync()
    {
        var standIn = new DaytonaStandIn();
        standIn._host = await StandInHost.StartAsync(standIn.Map);
        return standIn;
    }

    private void Map(WebApplication app)
    {
        app.Use(async (http, next) =>
        {
            lock (Requests)
            {
                Requests.Add($"{http.Request.Method} {http.Request.Path}");
            }

            if (http.Request.Headers.Authorization != $"Bearer {ApiKey}")
            {
                http.Response.StatusCode = 401;
                await http.Response.WriteAsJsonAsync(new { statusCode = 401, message = "Invalid API key", error = "Unauthorized" });
                return;
            }

            await next(http);
        });

        app.MapPost("/sandbox", async (HttpContext http) =>
        {
            var fault = Faults.Next("create");
            if (await FaultPlan.ApplyHttpAsync(fault, http))
            {
                return;
            }

            var body = await JsonNode.ParseAsync(http.Request.Body);
            var id = $"dtn-{Interlocked.Increment(ref _next):x4}";
            var name = body?["name"]?.GetValue<string>() ?? id;
            var sandbox = new Sandbox(id, name, new SandboxFs(Home))
            {
                Labels = body?["labels"]?.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>()) ?? [],
                Request = body,
            };
            lock (_sandboxes)
            {
                if (_sandboxes.Values.Any(s => s.Name == name))
                {
                    sandbox.Fs.Dispose();
                    http.Response.StatusCode = 409;
                    http.Response.WriteAsJsonAsync(new { statusCode = 409, message = $"Sandbox with name {name} already exists", error = "Conflict" }).GetAwaiter().GetResult();
                    return;
                }

                _sandboxes[id] = sandbox;
            }

            if (await FaultPlan.ApplyAfterAsync(fault, http))
            {
                return;
            }

            // Daytona answers 200 with the sandbox, not 201.
            await http.Response.WriteAsJsonAsync(Dto(http, sandbox, InitialState));
        });

        app.MapGet("/sandbox", async (HttpContext http) =>
        {
            if (await FaultPlan.ApplyHttpAsync(Faults.Next("list"), http))
            {
                return;
            }

            var labels = http.Request.Query["labels"].ToString() is { Length: > 0 } json
                ? JsonNode.Parse(json)!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>())
                : [];
            var items = _sandboxes.Values.Where(s => labels.All(l => s.Labels.GetValueOrDefault(l.Key) == l.Value)).Select(s => Dto(http, s, "started")).ToArray();
            await http.Response.WriteAsJsonAsync(new { items, nextCursor = (string?)null });
        });

        app.MapGet("/sandbox/{idOrName}", async (HttpContext http, string idOrName) =>
        {
            if (await FaultPlan.ApplyHttpAsync(Faults.Next("get"), http))
            {
                return;
            }

            if (Find(idOrName) is not { } sandbox)
            {
                await NotFound(http, idOrName);
                return;
            }

            await http.Response.WriteAsJsonAsync(Dto(http, sandbox, "started"));
        });

        app.MapGet("/sandbox/{id}/toolbox-proxy-url", async (HttpContext http, string id) =>
            await http.Response.WriteAsJsonAsync(new { url = ToolboxUrl(http) }));

        app.MapDelete("/sandbox/{idOrName}", async (HttpContext http, string idOrName) =>
        {
            var fault = Faults.Next("delete");
            if (await FaultPlan.ApplyHttpAsync(fault, http))
            {
                return;
            }

            if (Find(idOrName) is not { } sandbox || !_sandboxes.TryRemove(sandbox.Id, out _))
            {
                await NotFound(http, idOrName);
                return;
            }

            sandbox.Kill();
            sandbox.Fs.Dispose();
            if (await FaultPlan.ApplyAfterAsync(fault, http))
            {
                return;
            }

            await http.Response.WriteAsJsonAsync(Dto(http, sandbox, "destroyed"));
        });

        app.MapPost("/toolbox/{id}/files/bulk-upload", async (HttpContext http, string id) =>
        {
            if (await FaultPlan.ApplyHttpAsync(Faults.Next("upload"), http))
            {
                return;
            }

            if (!_sandboxes.TryGetValue(id, out var sandbox))
            {
                await NotFound(http, id);
                return;
            }

            var fs = sandbox.Fs;
            var form = await http.Request.ReadFormAsync();
            for (var i = 0; form.ContainsKey($"files[{i}].path"); i++)
            {
                var file = form.Files[$"files[{i}].file"]!;
                using var ms = new MemoryStream();
                await file.CopyToAsync(ms);
                fs.Write(form[$"files[{i}].path"].ToString(), ms.ToArray());
            }

            http.Response.StatusCode = 200;
        });

        app.MapPost("/toolbox/{id}/process/execute", async (HttpContext http, string id) =>
        {
            var fault = Faults.Next("execute");
            if (await FaultPlan.ApplyHttpAsync(fault, http))
            {
                return;
            }

            if (!_sandboxes.TryGetValue(id, out var sandbox))
            {
                await NotFound(http, id);
                return;
            }

            var fs = sandbox.Fs;
            var body = (await JsonNode.ParseAsync(http.Request.Body))!;
            var command = body["command"]!.GetValue<string>();
            var cwd = body["cwd"]?.GetValue<string>() ?? Home;
            var timeout = body["timeout"]?.GetValue<int>() is > 0 and var t ? t : 10;
            var envs = body["envs"]?.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>());
            Directory.CreateDirectory(fs.Map(cwd));

            Interlocked.Increment(ref _executions);
            if (sandbox.Labels.GetValueOrDefault(RunLabel) is { } run)
            {
                _executionsByRun.AddOrUpdate(run, 1, (_, n) => n + 1);
            }

            var exec = LocalExec.Start("/bin/sh", ["-c", command], fs.Map(cwd), envs, fs.Home);
            sandbox.Running.Add(exec);
            var combined = new MemoryStream();
            // The command is not tied to the request: it runs on to its end if the connection goes.
            var finished = exec.PumpAsync((_, chunk) =>
            {
                combined.Write(chunk);
                return Task.CompletedTask;
            }, TimeSpan.FromSeconds(timeout), CancellationToken.None);
            _ = finished.ContinueWith(_ => exec.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            if (await FaultPlan.ApplyAfterAsync(fault, http))
            {
                return;
            }

            var exit = await finished.WaitAsync(http.RequestAborted);

            if (exit is null)
            {
                http.Response.StatusCode = 408;
                await http.Response.WriteAsJsonAsync(new { statusCode = 408, message = "command execution timeout", error = "Request Timeout" });
                return;
            }

            await http.Response.WriteAsJsonAsync(new { exitCode = exit, result = Encoding.UTF8.GetString(combined.ToArray()) });
        });
    }

    private static string ToolboxUrl(HttpContext http) => $"{http.Request.Scheme}://{http.Request.Host}/toolbox";

    private Sandbox? Find(string idOrName) =>
        _sandboxes.TryGetValue(idOrName, out var byId) ? byId : _sandboxes.Values.FirstOrDefault(s => s.Name == idOrName);

    private static object Dto(HttpContext http, Sandbox sandbox, string state)
    {
        var request = sandbox.Request;
        return Dto(http, sandbox.Id, sandbox.Name, sandbox.Labels, state, request);
    }

    private static object Dto(HttpContext http, string id, string name, Dictionary<string, string> labels, string state, JsonNode? request) => new
    {
        id,
        organizationId = "org-standin",
        name,
        user = "daytona",
        env = new Dictionary<string, string>(),
        labels,
        @public = false,
        target = request?["target"]?.GetValue<string>() ?? "us",
        cpu = request?["cpu"]?.GetValue<int>() ?? 1,
        gpu = 0,
        memory = request?["memory"]?.GetValue<int>() ?? 1,
        disk = 3,
        state,
        desiredState = state == "destroyed" ? "destroyed" : "started",
        networkBlockAll = request?["networkBlockAll"]?.GetValue<bool>() ?? false,
        toolboxProxyUrl = ToolboxUrl(http),
        createdAt = DateTimeOffset.UtcNow,
        updatedAt = DateTimeOffset.UtcNow,
    };

    private static Task NotFound(HttpContext http, string id)
    {
        http.Response.StatusCode = 404;
        return http.Response.WriteAsJsonAsync(new { statusCode = 404, message = $"Sandbox with ID or name {id} not found", error = "Not Found" });
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        foreach (var sandbox in _sandboxes.Values)
        {
            sandbox.Kill();
            sandbox.Fs.Dispose();
        }
    }

    private sealed class Sandbox(string id, string name, SandboxFs fs)
    {
        public string Id { get; } = id;

        public string Name { get; } = name;

        public SandboxFs Fs { get; } = fs;

        public Dictionary<string, string> Labels { get; init; } = [];

        public JsonNode? Request { get; init; }

        public ConcurrentBag<LocalExec> Running { get; } = [];

        public void Kill()
        {
            foreach (var exec in Running)
            {
                exec.Kill();
            }
        }
    }
}
