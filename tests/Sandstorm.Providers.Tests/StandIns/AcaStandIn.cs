using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Sandstorm.Providers.Tests.StandIns;

/// <summary>
/// Stand-in for an Azure Container Apps code-interpreter session pool's data plane (2024-02-02-preview): code/execute,
/// files/upload and files/content. Sessions are created on first use of an identifier, like the service. The Python really
/// runs locally (<c>python3 -c</c>) in the session's directory. Fault operations: execute, upload.
/// </summary>
internal sealed class AcaStandIn : IAsyncDisposable
{
    public const string Token = "fake-aca-token";

    private readonly ConcurrentDictionary<string, SandboxFs> _sessions = new();
    private StandInHost? _host;

    public FaultPlan Faults { get; } = new();

    public Uri PoolEndpoint => new(_host!.BaseUrl, "subscriptions/sub/resourceGroups/rg/sessionPools/pool");

    public IReadOnlyCollection<string> Sessions => _sessions.Keys.ToArray();

    public static async Task<AcaStandIn> StartAsync()
    {
        var standIn = new AcaStandIn();
        standIn._host = await StandInHost.StartAsync(standIn.Map);
        return standIn;
    }

    private void Map(WebApplication app)
    {
        var pool = app.MapGroup("/subscriptions/{sub}/resourceGroups/{rg}/sessionPools/{pool}");
        pool.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            if (http.Request.Headers.Authorization != $"Bearer {Token}")
            {
                return Results.Json(new { error = new { code = "Unauthorized", message = "invalid token" } }, statusCode: 401);
            }

            if (http.Request.Query["api-version"] != "2024-02-02-preview" || string.IsNullOrEmpty(http.Request.Query["identifier"]))
            {
                return Results.Json(new { error = new { code = "BadRequest", message = "api-version and identifier are required" } }, statusCode: 400);
            }

            return await next(context);
        });

        pool.MapPost("/code/execute", async (HttpContext http) =>
        {
            if (await FaultPlan.ApplyHttpAsync(Faults.Next("execute"), http))
            {
                return;
            }

            var session = Session(http);
            var properties = (await JsonNode.ParseAsync(http.Request.Body))!["properties"]!;
            if (properties["codeInputType"]?.GetValue<string>() != "inline" || properties["executionType"]?.GetValue<string>() != "synchronous")
            {
                http.Response.StatusCode = 400;
                return;
            }

            var watch = Stopwatch.StartNew();
            using var exec = LocalExec.Start("python3", ["-c", properties["code"]!.GetValue<string>()], session.Home, null, session.Home);
            var stdout = new MemoryStream();
            var stderr = new MemoryStream();
            var exit = await exec.PumpAsync((isErr, chunk) =>
            {
                (isErr ? stderr : stdout).Write(chunk);
                return Task.CompletedTask;
            }, TimeSpan.FromSeconds(220), http.RequestAborted);

            await http.Response.WriteAsJsonAsync(new
            {
                properties = new
                {
                    status = exit is null ? "Timeout" : exit == 0 ? "Success" : "Failure",
                    stdout = Encoding.UTF8.GetString(stdout.ToArray()),
                    stderr = Encoding.UTF8.GetString(stderr.ToArray()),
                    result = "",
                    executionTimeInMilliseconds = watch.ElapsedMilliseconds,
                },
            });
        });

        pool.MapPost("/files/upload", async (HttpContext http) =>
        {
            if (await FaultPlan.ApplyHttpAsync(Faults.Next("upload"), http))
            {
                return;
            }

            var session = Session(http);
            var value = new JsonArray();
            foreach (var file in (await http.Request.ReadFormAsync()).Files)
            {
                using var ms = new MemoryStream();
                await file.CopyToAsync(ms);
                session.Write(file.FileName, ms.ToArray());
                value.Add(new JsonObject { ["properties"] = new JsonObject { ["filename"] = file.FileName, ["size"] = ms.Length } });
            }

            await http.Response.WriteAsJsonAsync(new JsonObject { ["value"] = value });
        });

        pool.MapGet("/files/content/{name}", async (HttpContext http, string name) =>
        {
            var path = Session(http).Map(name);
            if (!File.Exists(path))
            {
                http.Response.StatusCode = 404;
                return;
            }

            await http.Response.Body.WriteAsync(await File.ReadAllBytesAsync(path));
        });
    }

    // /mnt/data is the session's file area; code runs there.
    private SandboxFs Session(HttpContext http) => _sessions.GetOrAdd(http.Request.Query["identifier"].ToString(), _ => new SandboxFs("/mnt/data"));

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        foreach (var s in _sessions.Values)
        {
            s.Dispose();
        }
    }
}
