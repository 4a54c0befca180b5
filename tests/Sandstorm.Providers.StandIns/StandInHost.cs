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
    Status,
    Slow,
    MalformedJson,
    CutStream,
    Silent,
    Die,

    /// <summary>The connection is dropped without an answer, as when the server is down.</summary>
    Reset,
}

public sealed record Fault(FaultKind Kind, int Status = 500, string? Body = null, int? RetryAfterSeconds = null, TimeSpan Delay = default)
{
    public static Fault Http(int status, string? body = null, int? retryAfter = null) => new(FaultKind.Status, status, body, retryAfter);
}

/// <summary>Faults queued per operation plus a count of calls per operation, shared by a stand-in's handlers.</summary>
public sealed class FaultPlan
{
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Fault>> _faults = new();
    private readonly ConcurrentDictionary<string, int> _calls = new();

    /// <summary>
    /// While set, every operation fails this way (after being counted): the provider is down. Queued faults wait behind it.
    /// </summary>
    public Fault? Outage { get; set; }

    public void Add(string operation, Fault fault, int times = 1)
    {
        var queue = _faults.GetOrAdd(operation, _ => new());
        for (var i = 0; i < times; i++)
        {
            queue.Enqueue(fault);
        }
    }

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

    /// <summary>Applies a Status, Slow or MalformedJson fault to an HTTP response; false when the handler must go on.</summary>
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
            case FaultKind.Slow:
                await Task.Delay(fault.Delay, http.RequestAborted);
                return false;
            case FaultKind.Reset:
                http.Abort();
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
