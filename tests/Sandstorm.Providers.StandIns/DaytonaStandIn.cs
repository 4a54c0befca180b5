using System.Collections.Concurrent;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Sandstorm.Providers.StandIns;

/// <summary>
/// Stand-in for Daytona (remote, unreachable from here): the API (<c>/sandbox</c>, answering 200 on create) and the toolbox
/// under <c>{base}/toolbox/{id}/...</c>, which the sandboxes advertise as their toolboxProxyUrl. Commands run locally via
/// <c>sh -c</c> with stdout and stderr combined, as the daemon does. Checked against the official SDK by a test.
/// Fault operations: create, get, delete, upload, execute.
/// </summary>
public sealed class DaytonaStandIn : IAsyncDisposable
{
    public const string ApiKey = "dtn_standin_key";
    private const string Home = "/home/daytona";

    private readonly ConcurrentDictionary<string, SandboxFs> _sandboxes = new();
    private StandInHost? _host;
    private int _next;

    public FaultPlan Faults { get; } = new();

    public Uri BaseUrl => _host!.BaseUrl;

    public int Live => _sandboxes.Count;

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
            if (await FaultPlan.ApplyHttpAsync(Faults.Next("create"), http))
            {
                return;
            }

            var body = await JsonNode.ParseAsync(http.Request.Body);
            var id = $"dtn-{Interlocked.Increment(ref _next):x4}";
            _sandboxes[id] = new SandboxFs(Home);
            // Daytona answers 200 with the sandbox, not 201.
            await http.Response.WriteAsJsonAsync(Dto(http, id, InitialState, body));
        });

        app.MapGet("/sandbox/{id}", async (HttpContext http, string id) =>
        {
            if (await FaultPlan.ApplyHttpAsync(Faults.Next("get"), http))
            {
                return;
            }

            if (!_sandboxes.ContainsKey(id))
            {
                await NotFound(http, id);
                return;
            }

            await http.Response.WriteAsJsonAsync(Dto(http, id, "started", null));
        });

        app.MapGet("/sandbox/{id}/toolbox-proxy-url", async (HttpContext http, string id) =>
            await http.Response.WriteAsJsonAsync(new { url = ToolboxUrl(http) }));

        app.MapDelete("/sandbox/{id}", async (HttpContext http, string id) =>
        {
            if (await FaultPlan.ApplyHttpAsync(Faults.Next("delete"), http))
            {
                return;
            }

            if (!_sandboxes.TryRemove(id, out var fs))
            {
                await NotFound(http, id);
                return;
            }

            fs.Dispose();
            await http.Response.WriteAsJsonAsync(Dto(http, id, "destroyed", null));
        });

        app.MapPost("/toolbox/{id}/files/bulk-upload", async (HttpContext http, string id) =>
        {
            if (await FaultPlan.ApplyHttpAsync(Faults.Next("upload"), http))
            {
                return;
            }

            if (!_sandboxes.TryGetValue(id, out var fs))
            {
                await NotFound(http, id);
                return;
            }

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

            if (!_sandboxes.TryGetValue(id, out var fs))
            {
                await NotFound(http, id);
                return;
            }

            var body = (await JsonNode.ParseAsync(http.Request.Body))!;
            var command = body["command"]!.GetValue<string>();
            var cwd = body["cwd"]?.GetValue<string>() ?? Home;
            var timeout = body["timeout"]?.GetValue<int>() is > 0 and var t ? t : 10;
            var envs = body["envs"]?.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>());
            Directory.CreateDirectory(fs.Map(cwd));

            using var exec = LocalExec.Start("/bin/sh", ["-c", command], fs.Map(cwd), envs, fs.Home);
            var combined = new MemoryStream();
            var exit = await exec.PumpAsync((_, chunk) =>
            {
                combined.Write(chunk);
                return Task.CompletedTask;
            }, TimeSpan.FromSeconds(timeout), http.RequestAborted);

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

    private static object Dto(HttpContext http, string id, string state, JsonNode? request) => new
    {
        id,
        organizationId = "org-standin",
        name = id,
        user = "daytona",
        env = new Dictionary<string, string>(),
        labels = request?["labels"] ?? new JsonObject(),
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

        foreach (var fs in _sandboxes.Values)
        {
            fs.Dispose();
        }
    }
}
