using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Trace;
using Sandstorm.Api;
using Sandstorm.Api.Edge;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Local;
using Sandstorm.Orchestrations;
using Sandstorm.Providers;
using Sandstorm.Providers.Cloud;
using Sandstorm.Runtimes;
using Sandstorm.Security;
using Sandstorm.Storage;
using Sandstorm.Storage.Edge;
using Sandstorm.Testing;

namespace Sandstorm.Edge.Protocol.Tests;

/// <summary>
/// A real control plane in-process: the local host's composition (without local execution) and API on Kestrel (loopback, free port), the
/// in-memory durable engine behind the gRPC sidecar, state in real Azurite under a fresh table/container prefix.
/// One per test class: the durable gRPC client caches its channel across hosts in one process, so a second host in the
/// same process would talk to the first one's (stopped) sidecar. Tests isolate themselves with tenants of their own.
/// </summary>
public sealed class ControlPlaneHost : IAsyncDisposable
{
    /// <summary>Agents silent this long are dead: short so disconnect tests finish quickly, long enough for a sandbox start on a busy machine.</summary>
    public static readonly TimeSpan AgentTimeout = TimeSpan.FromSeconds(8);

    /// <summary>A leased job missing from heartbeats this long is offered again: well above the harness's 400 ms heartbeat.</summary>
    public static readonly TimeSpan LeaseTimeout = TimeSpan.FromSeconds(5);

    private readonly WebApplication _app;
    private readonly DirectoryInfo _state;

    private ControlPlaneHost(WebApplication app, DirectoryInfo state, string url, SynchronizedList<Activity> spans)
    {
        _app = app;
        _state = state;
        Url = url;
        Spans = spans;
    }

    public string Url { get; }

    /// <summary>Every span the control plane's own observability exported (an in-memory exporter beside its configured ones).</summary>
    public SynchronizedList<Activity> Spans { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<ControlPlaneHost> StartAsync(AzuriteFixture azurite, TimeSpan agentTimeout)
    {
        var state = Directory.CreateTempSubdirectory("sandstorm-edge-cp-");
        var url = $"http://127.0.0.1:{AzuriteProcess.FreePort()}";
        var options = new LocalOptions { Durable = "in-memory", Urls = url, Storage = azurite.ConnectionString, StateDirectory = state.FullName };
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenOn(url));
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Storage"] = azurite.ConnectionString,
            ["Sandstorm:Storage:Prefix"] = "e" + Guid.NewGuid().ToString("N")[..10],
            ["Sandstorm:Signing:KeyPath"] = Path.Combine(state.FullName, "signing-key.pem"),
            ["Sandstorm:Runs:Overhead"] = "00:00:40",
            ["Sandstorm:Edge:AgentTimeout"] = agentTimeout.ToString("c"),
            ["Sandstorm:Edge:LeaseTimeout"] = LeaseTimeout.ToString("c"),
            ["Sandstorm:Edge:SweepInterval"] = "00:00:00.250",
            ["Sandstorm:Edge:PollInterval"] = "00:00:00.250",
            ["Sandstorm:Reoptimize:Schedule"] = "off",
        });
        builder.Services.AddSingleton(options);
        // The local host's composition, minus local execution: every run here must go to the agents under test.
        builder.Services.AddSandstormControlPlane(builder.Configuration, new HostProfile { Name = "edge-protocol-tests", RunsLoops = true });
        builder.AddSandstormDurable(options, azurite.ConnectionString);
        var spans = new SynchronizedList<Activity>();
        builder.Services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(spans));

        var app = builder.Build();
        app.MapSandstormApi();
        app.MapSandstormDurable();
        await app.StartAsync();

        return new ControlPlaneHost(app, state, url, spans);
    }

    /// <summary>A fresh tenant and its API key.</summary>
    public async Task<Tenant> CreateTenantAsync(string name)
    {
        var id = $"{name}-{Guid.NewGuid().ToString("N")[..8]}";
        var key = await Services.GetRequiredService<ApiKeyStore>().CreateAsync(id, "test", CancellationToken.None);
        return new Tenant(id, key);
    }

    public HttpClient Client(string? bearer)
    {
        var http = new HttpClient { BaseAddress = new Uri(Url + "/"), Timeout = TimeSpan.FromSeconds(90) };
        if (bearer is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        return http;
    }

    /// <summary>An enrollment token of the tenant owning <paramref name="apiKey"/>.</summary>
    public async Task<string> EnrollmentTokenAsync(string apiKey)
    {
        using var http = Client(apiKey);
        using var response = await http.PostAsJsonAsync("v1/edge/enrollment-tokens", new EdgeEnrollmentTokenRequest { TtlMinutes = 10 }, SandstormJson.Options);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<EdgeEnrollmentTokenResponse>(SandstormJson.Options))!.Token;
    }

    /// <summary>Submits a run and returns its id (not waiting).</summary>
    /// <summary>Cancels a run (<c>DELETE /v1/runs/{id}</c>).</summary>
    public async Task CancelAsync(string apiKey, string runId)
    {
        using var http = Client(apiKey);
        using var response = await http.DeleteAsync($"v1/runs/{runId}");
        Assert.True(response.IsSuccessStatusCode, $"cancel answered {(int)response.StatusCode}");
    }

    public async Task<string> SubmitAsync(string apiKey, string code, int timeoutMs = 20_000)
    {
        using var http = Client(apiKey);
        using var response = await http.PostAsJsonAsync(
            "v1/runs",
            new RunRequest { Code = code, Language = Languages.Python, IsolationLevel = IsolationLevel.Standard, Timeout = timeoutMs },
            SandstormJson.Options);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<RunResult>(SandstormJson.Options))!.Id;
    }

    public async Task<RunResult> GetRunAsync(string apiKey, string runId)
    {
        using var http = Client(apiKey);
        return (await http.GetFromJsonAsync<RunResult>($"v1/runs/{runId}", SandstormJson.Options))!;
    }

    public Task<RunResult> WaitRunAsync(string apiKey, string runId, TimeSpan? timeout = null) =>
        Poll.UntilAsync(() => GetRunAsync(apiKey, runId), r => r.Status.IsTerminal(), timeout ?? TimeSpan.FromSeconds(60), $"run {runId} to finish");

    /// <summary>True when GET /v1/providers shows the edge provider to this tenant.</summary>
    public async Task<bool> EdgeLiveAsync(string apiKey)
    {
        using var http = Client(apiKey);
        var body = await http.GetStringAsync("v1/providers");
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("providers").EnumerateArray()
            .Any(p => p.GetProperty("capabilities").GetProperty("provider").GetString() == "edge");
    }

    public Task<EdgeJobRecord?> JobAsync(Tenant tenant, string runId) => JobAsync(tenant.Id, runId);

    public Task<EdgeJobRecord?> JobAsync(string tenantId, string runId) =>
        Services.GetRequiredService<EdgeJobStore>().GetAsync(tenantId, Providers.Edge.EdgeProvider.JobIdOf(runId), CancellationToken.None);

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _app.StopAsync(stop.Token);
        }
        catch (OperationCanceledException)
        {
            // The sidecar's streaming work-item calls can outlive a short stop; the process ends the rest.
        }

        await _app.DisposeAsync();
        _state.Delete(recursive: true);
    }
}

/// <summary>A test's own tenant.</summary>
public sealed record Tenant(string Id, string Key);

/// <summary>Azurite plus one control plane for the whole test class.</summary>
public sealed class ControlPlaneFixture : IAsyncLifetime
{
    private readonly AzuriteFixture _azurite = new();

    public ControlPlaneHost Host { get; private set; } = null!;

    public async Task InitializeAsync() => Host = await ControlPlaneHost.StartAsync(_azurite, ControlPlaneHost.AgentTimeout);

    public async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        _azurite.Dispose();
    }
}
