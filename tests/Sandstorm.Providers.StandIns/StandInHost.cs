using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Sandstorm.Providers.StandIns;

/// <summary>What a stand-in does instead of answering normally, once, for one operation.</summary>
public enum FaultKind
{
    /// <summary>No fault: the call is answered normally (queued to let earlier calls of an operation through).</summary>
    Pass,

    /// <summary>Answers with an error status (HTTP) or status code (gRPC); nothing happens.</summary>
    Status,

    /// <summary>
    /// Refuses the call in the protocol's own terms before acting: HTTP 400, gRPC FAILED_PRECONDITION, and on E2B's process
    /// start a Connect end-of-stream error invalid_argument before any start event (what envd sends when it cannot launch).
    /// </summary>
    Refuse,

    /// <summary>Waits <see cref="Fault.Delay"/>, then acts and answers normally (nothing happens if the client gave up first).</summary>
    Slow,

    MalformedJson,

    /// <summary>A stream is cut after its first chunk of output; the process goes on running in the sandbox.</summary>
    CutStream,

    /// <summary>A stream starts, then sends nothing at all (no output, no keepalive); the process goes on running.</summary>
    Silent,

    /// <summary>The sandbox dies under the running process.</summary>
    Die,

    /// <summary>The connection is dropped without an answer and nothing happens, as when the server is down.</summary>
    Reset,

    /// <summary>Nothing happens and no answer comes until the client gives up (a request lost on its way).</summary>
    Hang,

    /// <summary>The operation takes effect (the sandbox is created, the code starts), then the connection is dropped without an answer.</summary>
    DropAfter,

    /// <summary>The operation takes effect, then no answer comes until the client gives up (an answer lost on its way back).</summary>
    HangAfter,
}

/// <summary>The steps of a run every cloud stand-in can fail at, named the same for all of them.</summary>
public enum CloudStep
{
    /// <summary>Creating the sandbox (E2B, Daytona, Modal; ACA creates sessions implicitly and has none).</summary>
    Create,

    /// <summary>The call that starts the user's code.</summary>
    Start,

    /// <summary>Reading the output while the code runs (E2B's process stream, Modal's output reads).</summary>
    Stream,

    /// <summary>Deleting the sandbox (ACA has none).</summary>
    Release,
}

public sealed record Fault(FaultKind Kind, int Status = 500, string? Body = null, int? RetryAfterSeconds = null, TimeSpan Delay = default)
{
    public static Fault Http(int status, string? body = null, int? retryAfter = null) => new(FaultKind.Status, status, body, retryAfter);
}

/// <summary>
/// Faults queued per operation plus a count of calls per operation, shared by a stand-in's handlers. Tests name either
/// the stand-in's own operations (<see cref="Add"/>) or the common <see cref="CloudStep"/>s (<see cref="At"/>).
/// </summary>
public sealed class FaultPlan
{
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Fault>> _faults = new();
    private readonly ConcurrentDictionary<string, int> _calls = new();
    private readonly IReadOnlyDictionary<CloudStep, string> _steps;

    public FaultPlan(IReadOnlyDictionary<CloudStep, string>? steps = null)
    {
        _steps = steps ?? new Dictionary<CloudStep, string>();
    }

    /// <summary>
    /// While set, every operation fails this way (after being counted): the provider is down. Queued faults wait behind it.
    /// </summary>
    public Fault? Outage { get; set; }

    /// <summary>The common steps this stand-in has, and the operation each one is.</summary>
    public IReadOnlyDictionary<CloudStep, string> Steps => _steps;

    public void Add(string operation, Fault fault, int times = 1)
    {
        var queue = _faults.GetOrAdd(operation, _ => new());
        for (var i = 0; i < times; i++)
        {
            queue.Enqueue(fault);
        }
    }

    /// <summary>Queues a fault at a common step; throws when this cloud has no such step.</summary>
    public void At(CloudStep step, Fault fault, int times = 1) =>
        Add(_steps.TryGetValue(step, out var operation) ? operation : throw new ArgumentException($"this stand-in has no {step} step", nameof(step)), fault, times);

    /// <summary>Queues a fault of this kind at a common step.</summary>
    public void At(CloudStep step, FaultKind kind, int times = 1) => At(step, new Fault(kind), times);

    /// <summary>Drops the faults still queued for an operation.</summary>
    public void Clear(string operation) => _faults.TryRemove(operation, out _);

    /// <summary>Counts the call and returns its fault, if one is queued.</summary>
    public Fault? Next(string operation)
    {
        _calls.AddOrUpdate(operation, 1, (_, n) => n + 1);
        if (Outage is { } outage)
        {
            return outage;
        }

        return _faults.TryGetValue(operation, out var q) && q.TryDequeue(out var f) ? f : null;
    }

    public int Calls(string operation) => _calls.GetValueOrDefault(operation);

    /// <summary>Calls made at a common step.</summary>
    public int Calls(CloudStep step) => _steps.TryGetValue(step, out var operation) ? Calls(operation) : 0;

    /// <summary>
    /// Applies a fault that comes before the operation acts (Status, Slow, MalformedJson, Reset, Hang) to an HTTP request;
    /// true when the handler must stop (the answer is given, or the connection is gone).
    /// </summary>
    public static async Task<bool> ApplyHttpAsync(Fault? fault, HttpContext http)
    {
        switch (fault?.Kind)
        {
            case FaultKind.Status:
                http.Response.StatusCode = fault.Status;
                if (fault.RetryAfterSeconds is { } ra)
                {
                    http.Response.Headers.RetryAfter = ra.ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                http.Response.ContentType = "application/json";
                await http.Response.WriteAsync(fault.Body ?? $$"""{"code":{{fault.Status}},"message":"stand-in fault {{fault.Status}}"}""");
                return true;
            case FaultKind.Refuse:
                http.Response.StatusCode = 400;
                http.Response.ContentType = "application/json";
                await http.Response.WriteAsync("""{"code":400,"message":"stand-in refused the request"}""");
                return true;
            case FaultKind.Slow:
                await Task.Delay(fault.Delay, http.RequestAborted);
                return false;
            case FaultKind.Reset:
                http.Abort();
                return true;
            case FaultKind.Hang:
                await HangAsync(http.RequestAborted);
                return true;
            case FaultKind.MalformedJson:
                http.Response.StatusCode = 200;
                http.Response.ContentType = "application/json";
                await http.Response.WriteAsync("{\"sandboxID\": \"sbx-broken\", \"envd");
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// Applies a fault that comes after the operation acted (DropAfter, HangAfter): the answer is lost. True when the handler
    /// must not answer.
    /// </summary>
    public static async Task<bool> ApplyAfterAsync(Fault? fault, HttpContext http)
    {
        switch (fault?.Kind)
        {
            case FaultKind.DropAfter:
                http.Abort();
                return true;
            case FaultKind.HangAfter:
                await HangAsync(http.RequestAborted);
                return true;
            default:
                return false;
        }
    }

    /// <summary>Waits until the client gives up (or the server stops).</summary>
    public static Task HangAsync(CancellationToken aborted) =>
        Task.Delay(Timeout.Infinite, aborted).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
}

/// <summary>
/// What every cloud stand-in offers a test: its fault plan, and what the adapter left behind — how many times user code
/// was started (a reattach does not count) and what is still allocated. Counts per run rely on the tags the adapters put on
/// a run's sandboxes (E2B metadata, Daytona labels, Modal names, ACA session identifiers).
/// </summary>
public interface ICloudStandIn : IAsyncDisposable
{
    /// <summary>The provider id the stand-in speaks for ("e2b", "daytona", "modal", "aca").</summary>
    string Provider { get; }

    FaultPlan Faults { get; }

    /// <summary>Times user code was started, over all runs.</summary>
    int Executions { get; }

    /// <summary>Times user code of this run was started: at most 1 is the exactly-once guarantee.</summary>
    int ExecutionsFor(string runId);

    /// <summary>Sandboxes allocated now (for ACA: sessions, which have no delete and only expire).</summary>
    int Live { get; }

    /// <summary>Sandboxes of this run allocated now: 0 after release.</summary>
    int LiveFor(string runId);
}

/// <summary>A Kestrel server on a free loopback port, hosting one stand-in.</summary>
public sealed class StandInHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private StandInHost(WebApplication app, Uri baseUrl)
    {
        _app = app;
        BaseUrl = baseUrl;
    }

    public Uri BaseUrl { get; }

    public static async Task<StandInHost> StartAsync(Action<WebApplication> map, bool http2Only = false, Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, o =>
            // gRPC without TLS needs HTTP/2 with prior knowledge.
            o.Protocols = http2Only ? HttpProtocols.Http2 : HttpProtocols.Http1));
        services?.Invoke(builder.Services);
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features
            .Get<IServerAddressesFeature>()!.Addresses.First();
        return new StandInHost(app, new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal)));
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }
}

/// <summary>A sandbox's file system root: absolute sandbox paths land under a temp directory.</summary>
public sealed class SandboxFs : IDisposable
{
    public SandboxFs(string home)
    {
        Root = Directory.CreateTempSubdirectory("sandstorm-standin-").FullName;
        HomeInSandbox = home;
        Directory.CreateDirectory(Map(home));
    }

    public string Root { get; }

    public string HomeInSandbox { get; }

    public string Home => Map(HomeInSandbox);

    /// <summary>Maps a sandbox path (absolute, or relative to home) to the host.</summary>
    public string Map(string sandboxPath)
    {
        var absolute = sandboxPath.StartsWith('/') ? sandboxPath : HomeInSandbox.TrimEnd('/') + "/" + sandboxPath;
        var full = Path.GetFullPath(Path.Combine(Root, absolute.TrimStart('/')));
        if (!full.StartsWith(Root, StringComparison.Ordinal))
        {
            throw new InvalidOperationException("path escapes the sandbox: " + sandboxPath);
        }

        return full;
    }

    public void Write(string sandboxPath, byte[] content)
    {
        var path = Map(sandboxPath);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a process may still hold a file.
        }
    }
}
