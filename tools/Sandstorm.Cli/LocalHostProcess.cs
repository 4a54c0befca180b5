using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Sandstorm.Cli;

/// <summary>A local host started for a benchmark, with its own fresh state directory (and so its own Azurite).</summary>
public sealed class LocalHostProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _state;

    private LocalHostProcess(Process process, string state, string url, string apiKey)
    {
        _process = process;
        _state = state;
        Url = url;
        ApiKey = apiKey;
    }

    public string Url { get; }

    public string ApiKey { get; }

    public int ProcessId => _process.Id;

    /// <summary>Starts <paramref name="dll"/> with the given durable engine and extra environment (configuration) and waits until it serves.</summary>
    public static async Task<LocalHostProcess> StartAsync(string dll, string engine, IReadOnlyDictionary<string, string>? environment = null, IReadOnlyList<string>? extraArguments = null)
    {
        var state = Directory.CreateTempSubdirectory("sandstorm-bench-").FullName;
        var port = FreePort();
        var url = $"http://127.0.0.1:{port}/";
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { dll, "--durable", engine, "--urls", url.TrimEnd('/'), "--state", state }.Concat(extraArguments ?? []))
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[name] = value;
        }

        var process = Process.Start(psi)!;

        // The last lines the host wrote, for the error should it die while starting.
        var tail = new Queue<string>();
        void Keep(string? line)
        {
            lock (tail)
            {
                if (line is null)
                {
                    return;
                }

                tail.Enqueue(line);
                if (tail.Count > 40)
                {
                    tail.Dequeue();
                }
            }
        }

        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(2) };
        var keyPath = Path.Combine(state, "dev-api-key");
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(90))
        {
            if (process.HasExited)
            {
                await process.WaitForExitAsync();
                lock (tail)
                {
                    throw new InvalidOperationException($"the local host exited with {process.ExitCode}; its last output:\n{string.Join('\n', tail)}");
                }
            }

            try
            {
                if ((await http.GetAsync("v1/health")).IsSuccessStatusCode && File.Exists(keyPath))
                {
                    return new LocalHostProcess(process, state, url, (await File.ReadAllTextAsync(keyPath)).Trim());
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("the local host did not start within 90 s");
    }

    /// <summary>The built local host, looked up from the current directory upwards (Release first).</summary>
    public static string FindHostDll()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            foreach (var config in new[] { "Release", "Debug" })
            {
                var path = Path.Combine(dir.FullName, "functions", "Sandstorm.Local", "bin", config, "net10.0", "Sandstorm.Local.dll");
                if (File.Exists(path))
                {
                    return path;
                }
            }
        }

        throw new FileNotFoundException("Sandstorm.Local.dll not found: build the solution first, or pass --host PATH");
    }

    public async ValueTask DisposeAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        Directory.Delete(_state, recursive: true);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
