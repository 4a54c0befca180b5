using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;

namespace Sandstorm.Cli.Commands;

/// <summary>
/// <c>sandstorm bench pipeline</c>: end-to-end time of <c>print(1)</c> through the local host against
/// <c>python3 -c 'print(1)'</c> run directly, interleaved in one run, for each durable engine; then runs/s at concurrency N.
/// </summary>
public static class BenchPipelineCommand
{
    private const string Body = """{"code":"print(1)","language":"python","isolationLevel":"none","timeout":30000}""";

    public static async Task<int> RunAsync(string[] args)
    {
        var (flags, _) = ControlPlane.Parse(args);
        var runs = int.Parse(flags.GetValueOrDefault("runs") ?? "200", CultureInfo.InvariantCulture);
        var concurrency = int.Parse(flags.GetValueOrDefault("concurrency") ?? "16", CultureInfo.InvariantCulture);
        var engines = (flags.GetValueOrDefault("engines") ?? "in-memory,azurite").Split(',');
        var hostDll = flags.GetValueOrDefault("host") ?? FindHostDll();

        Console.WriteLine($"bench pipeline: {runs} sequential runs interleaved with bare python, then {runs * 2} runs at concurrency {concurrency}");
        foreach (var engine in engines)
        {
            await using var host = await LocalHost.StartAsync(hostDll, engine);
            using var http = new HttpClient { BaseAddress = new Uri(host.Url), Timeout = TimeSpan.FromSeconds(120) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", host.ApiKey);

            for (var i = 0; i < 20; i++)
            {
                await SubmitAsync(http);
                await BareAsync();
            }

            var viaHost = new List<double>();
            var bare = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                viaHost.Add(await SubmitAsync(http));
                bare.Add(await BareAsync());
            }

            var clock = Stopwatch.StartNew();
            var total = runs * 2;
            var next = 0;
            var failures = 0;
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
            {
                while (Interlocked.Increment(ref next) <= total)
                {
                    try
                    {
                        await SubmitAsync(http);
                    }
                    catch (InvalidOperationException)
                    {
                        Interlocked.Increment(ref failures);
                    }
                }
            }));
            var throughput = total / clock.Elapsed.TotalSeconds;

            var (hp50, hp95) = (Percentile(viaHost, 50), Percentile(viaHost, 95));
            var (bp50, bp95) = (Percentile(bare, 50), Percentile(bare, 95));
            Console.WriteLine();
            Console.WriteLine($"engine {engine}");
            Console.WriteLine($"  bare python3 -c 'print(1)'   p50 {bp50,8:0.0} ms   p95 {bp95,8:0.0} ms");
            Console.WriteLine($"  through the local host      p50 {hp50,8:0.0} ms   p95 {hp95,8:0.0} ms");
            Console.WriteLine($"  overhead                    p50 {hp50 - bp50,8:0.0} ms   p95 {hp95 - bp95,8:0.0} ms   ({hp50 / bp50:0.00}x at p50)");
            Console.WriteLine($"  throughput at concurrency {concurrency}: {throughput:0.0} runs/s ({total} runs, {failures} failed)");
        }

        return 0;
    }

    private static async Task<double> SubmitAsync(HttpClient http)
    {
        var clock = Stopwatch.StartNew();
        using var response = await http.PostAsync("v1/runs?wait=60", new StringContent(Body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK || !text.Contains("\"succeeded\"", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"run did not succeed: {(int)response.StatusCode} {text}");
        }

        return clock.Elapsed.TotalMilliseconds;
    }

    private static async Task<double> BareAsync()
    {
        var clock = Stopwatch.StartNew();
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("print(1)");
        using var process = Process.Start(psi)!;
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return clock.Elapsed.TotalMilliseconds;
    }

    private static double Percentile(List<double> values, int p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(p / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    private static string FindHostDll()
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

    /// <summary>A local host started for the benchmark, with its own fresh state directory.</summary>
    private sealed class LocalHost : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _state;

        private LocalHost(Process process, string state, string url, string apiKey)
        {
            _process = process;
            _state = state;
            Url = url;
            ApiKey = apiKey;
        }

        public string Url { get; }

        public string ApiKey { get; }

        public static async Task<LocalHost> StartAsync(string dll, string engine)
        {
            var state = Directory.CreateTempSubdirectory("sandstorm-bench-").FullName;
            var port = FreePort();
            var url = $"http://127.0.0.1:{port}/";
            var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[] { dll, "--durable", engine, "--urls", url.TrimEnd('/'), "--state", state })
            {
                psi.ArgumentList.Add(arg);
            }

            psi.Environment["Logging__LogLevel__Default"] = "Warning";
            var process = Process.Start(psi)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();

            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(2) };
            var keyPath = Path.Combine(state, "dev-api-key");
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(90))
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"the local host exited with {process.ExitCode}");
                }

                try
                {
                    if ((await http.GetAsync("v1/health")).IsSuccessStatusCode && File.Exists(keyPath))
                    {
                        return new LocalHost(process, state, url, (await File.ReadAllTextAsync(keyPath)).Trim());
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
}
