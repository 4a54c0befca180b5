using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using Sandstorm.Storage;
using Sandstorm.Testing;

namespace Sandstorm.IntegrationTests;

/// <summary>The real local host (<c>Sandstorm.Local</c>) as a child process over the test run's Azurite, with its own hub and state.</summary>
public sealed class LocalHostProcess : IAsyncDisposable
{
    private readonly string? _storage;
    private readonly string _hub;
    private readonly IReadOnlyDictionary<string, string> _environment;
    private readonly ConcurrentQueue<string> _log = new();
    private Process? _process;

    /// <param name="storage">The storage connection string; null: the host starts its own Azurite with its data under <paramref name="state"/>.</param>
    /// <param name="environment">Extra environment of the host process (configuration such as <c>Sandstorm__Providers__E2B__BaseUrl</c>).</param>
    /// <param name="state">The state directory of an earlier host to start again over (default: a new one).</param>
    public LocalHostProcess(string? storage, string? hub = null, IReadOnlyDictionary<string, string>? environment = null, string? state = null)
    {
        _storage = storage;
        _hub = hub ?? "it" + Guid.NewGuid().ToString("N")[..10];
        _environment = environment ?? new Dictionary<string, string>();
        State = state ?? Directory.CreateTempSubdirectory("sandstorm-it-").FullName;
        Url = $"http://127.0.0.1:{AzuriteProcess.FreePort()}/";
    }

    public string Url { get; }

    public string State { get; }

    /// <summary>The host's runtimes' work root (its hub's own).</summary>
    public string WorkRoot => Path.Combine(Path.GetTempPath(), "sandstorm-" + _hub);

    public string ApiKey { get; private set; } = "";

    public string Log => string.Join('\n', _log);

    public async Task StartAsync()
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { HostDll(), "--durable", "azurite", "--hub", _hub, "--urls", Url.TrimEnd('/'), "--state", State })
        {
            psi.ArgumentList.Add(arg);
        }

        if (_storage is not null)
        {
            psi.ArgumentList.Add("--storage");
            psi.ArgumentList.Add(_storage);
        }

        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        // Each hub its own work root and cgroup parent: hosts of one test run (and of other runs on the machine) never share a
        // Shield socket, an orphan sweep or a cgroup; a host started again over the same hub finds what the killed one left.
        psi.Environment["Sandstorm__Local__WorkRoot"] = WorkRoot;
        psi.Environment["Sandstorm__Local__CgroupParent"] = "sandstorm/" + _hub;
        foreach (var (name, value) in _environment)
        {
            psi.Environment[name] = value;
        }
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => _log.Enqueue(e.Data ?? "");
        _process.ErrorDataReceived += (_, e) => _log.Enqueue(e.Data ?? "");
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(2) };
        var keyPath = Path.Combine(State, "dev-api-key");
        await Poll.UntilAsync(
            async () =>
            {
                if (_process.HasExited)
                {
                    throw new InvalidOperationException($"the local host exited with {_process.ExitCode}:\n{Log}");
                }

                try
                {
                    return (await http.GetAsync("v1/health")).IsSuccessStatusCode && File.Exists(keyPath);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    return false;
                }
            },
            ready => ready,
            TimeSpan.FromSeconds(90),
            "the local host to answer /v1/health");
        ApiKey = (await File.ReadAllTextAsync(keyPath)).Trim();
    }

    /// <summary>SIGKILL: no graceful shutdown, as a crash or an OOM kill would.</summary>
    public async Task KillAsync()
    {
        _process!.Kill(entireProcessTree: false);
        await WaitForExitAsync("SIGKILL");
    }

    /// <summary>SIGTERM: the host shuts down (and stops its own Azurite so that it saves).</summary>
    public async Task StopAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", _process!.Id.ToString()]))
        {
            await kill.WaitForExitAsync();
        }

        await WaitForExitAsync("SIGTERM");
    }

    /// <summary>
    /// Waits for the host to exit and its output to end, with a deadline: a host that does not stop, or a child of it that
    /// keeps its output open, fails the test with the host's log instead of holding the run.
    /// </summary>
    private async Task WaitForExitAsync(string after)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await _process!.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            var exited = _process!.HasExited;
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the local host {(exited ? "exited but its output stayed open (a child holds it)" : "did not exit")} 60 s after {after}:\n{Log}");
        }
    }

    /// <summary>The pid of the Azurite the host started (recorded in its state directory).</summary>
    public int AzuritePid => int.Parse(File.ReadAllText(Path.Combine(State, "azurite", "azurite.pid")));

    public HttpClient Client(string? apiKey = null)
    {
        var http = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(120) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey ?? ApiKey);
        return http;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await WaitForExitAsync("the test's end");
        }

        _process?.Dispose();
        foreach (var directory in new[] { State, WorkRoot })
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A host started again over the same hub may still use it, or a mount of a killed host stays until then.
            }
        }
    }

    private static string HostDll()
    {
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var (framework, configuration) = (output.Name, output.Parent!.Name);
        for (var dir = output; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "functions", "Sandstorm.Local", "bin", configuration, framework, "Sandstorm.Local.dll");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("Sandstorm.Local.dll not found: build the solution");
    }
}

/// <summary>One Azurite and one local host shared by the HTTP tests of a run.</summary>
public sealed class LocalHostFixture : IAsyncLifetime
{
    public AzuriteFixture Azurite { get; } = new();

    public LocalHostProcess Host { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Host = new LocalHostProcess(Azurite.ConnectionString);
        await Host.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        Azurite.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class LocalHostCollection : ICollectionFixture<LocalHostFixture>
{
    public const string Name = "local host";
}
