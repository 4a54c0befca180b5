using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Sandstorm.Providers.StandIns;

/// <summary>
/// Stand-in for an Azure Container Apps code-interpreter session pool's data plane (2024-02-02-preview): code/execute,
/// files/upload and files/content. Sessions are created on first use of an identifier, like the service. The Python really
/// runs locally (<c>python3 -c</c>) in the session's directory and runs on to its end if the connection goes.
/// Fault operations: execute, upload. Sessions have no delete: <see cref="Live"/> counts every session ever used.
/// It also serves a managed-identity token endpoint of the App Service kind (<c>IDENTITY_ENDPOINT</c> +
/// <c>IDENTITY_HEADER</c>, api-version 2019-08-01), so a host process can get its token through Azure.Identity's own
/// managed-identity path instead of a fake credential.
/// </summary>
public sealed class AcaStandIn : ICloudStandIn
{
    public const string Token = "fake-aca-token";

    /// <summary>The secret a caller of the identity endpoint must send as <c>X-IDENTITY-HEADER</c>.</summary>
    public const string IdentityHeader = "standin-identity-header";

    private readonly ConcurrentDictionary<string, SandboxFs> _sessions = new();
    private readonly ConcurrentDictionary<string, long> _reportedMs = new();
    private readonly ConcurrentQueue<string> _tokenResources = new();
    private readonly ConcurrentDictionary<string, int> _executionsBySession = new();
    private StandInHost? _host;
    private int _executions;

    public string Provider => "aca";

    // A session exists once its identifier is used and only expires: there is no create and no release to fail.
    public FaultPlan Faults { get; } = new(new Dictionary<CloudStep, string> { [CloudStep.Start] = "execute" });

    public int Executions => _executions;

    public int ExecutionsFor(string runId) => _executionsBySession.GetValueOrDefault("sandstorm-" + runId);

    public int Live => _sessions.Count;

    public int LiveFor(string runId) => _sessions.ContainsKey("sandstorm-" + runId) ? 1 : 0;

    public Uri PoolEndpoint => new(_host!.BaseUrl, "subscriptions/sub/resourceGroups/rg/sessionPools/pool");

    public IReadOnlyCollection<string> Sessions => _sessions.Keys.ToArray();

    /// <summary>The App Service managed-identity endpoint (the value of <c>IDENTITY_ENDPOINT</c>).</summary>
    public Uri IdentityEndpoint => new(_host!.BaseUrl, "msi/token");

    /// <summary>The resources tokens were asked for at the identity endpoint.</summary>
    public IReadOnlyCollection<string> TokenResources => _tokenResources.ToArray();

    /// <summary>The <c>executionTimeInMilliseconds</c> the last execution in a session reported: the usage it bills.</summary>
    public long? ReportedExecutionMs(string identifier) => _reportedMs.TryGetValue(identifier, out var ms) ? ms : null;

    public static async Task<AcaStandIn> StartAsync()
    {
        var standIn = new AcaStandIn();
        standIn._host = await StandInHost.StartAsync(standIn.Map);
        return standIn;
    }

    private void Map(WebApplication app)
    {
        app.MapGet("/msi/token", (HttpContext http) =>
        {
            if (http.Request.Headers["X-IDENTITY-HEADER"] != IdentityHeader || http.Request.Query["api-version"] != "2019-08-01")
            {
                return Results.Json(new { error = "invalid_request", error_description = "identity header or api-version missing" }, statusCode: 400);
            }

            var resource = http.Request.Query["resource"].ToString();
            _tokenResources.Enqueue(resource);
            return Results.Json(new
            {
                access_token = Token,
                expires_on = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
                resource,
                token_type = "Bearer",
            });
        });

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
            var fault = Faults.Next("execute");
            if (await FaultPlan.ApplyHttpAsync(fault, http))
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

            var identifier = http.Request.Query["identifier"].ToString();
            Interlocked.Increment(ref _executions);
            _executionsBySession.AddOrUpdate(identifier, 1, (_, n) => n + 1);
            var watch = Stopwatch.StartNew();
            var exec = LocalExec.Start("python3", ["-c", properties["code"]!.GetValue<string>()], session.Home, null, session.Home);
            var stdout = new MemoryStream();
            var stderr = new MemoryStream();
            // The code is not tied to the request: it runs on to its end if the connection goes.
            var finished = exec.PumpAsync((isErr, chunk) =>
            {
                (isErr ? stderr : stdout).Write(chunk);
                return Task.CompletedTask;
            }, TimeSpan.FromSeconds(220), CancellationToken.None);
            _ = finished.ContinueWith(_ => exec.Dispose(), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            if (await FaultPlan.ApplyAfterAsync(fault, http))
            {
                return;
            }

            var exit = await finished.WaitAsync(http.RequestAborted);
            var executionMs = watch.ElapsedMilliseconds;
            _reportedMs[identifier] = executionMs;
            await http.Response.WriteAsJsonAsync(new
            {
                properties = new
                {
                    status = exit is null ? "Timeout" : exit == 0 ? "Success" : "Failure",
                    stdout = Encoding.UTF8.GetString(stdout.ToArray()),
                    stderr = Encoding.UTF8.GetString(stderr.ToArray()),
                    result = "",
                    executionTimeInMilliseconds = executionMs,
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
