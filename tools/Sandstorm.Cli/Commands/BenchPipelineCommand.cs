using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Sandstorm.Cli.Commands;

/// <summary>
/// <c>sandstorm bench pipeline</c>: end-to-end time of <c>print(1)</c> through the local host against
/// <c>python3 -c 'print(1)'</c> run directly, interleaved in one run, for each durable engine; then runs/s at concurrency N.
/// </summary>
public static class BenchPipelineCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var (flags, _) = ControlPlane.Parse(args);
        var runs = int.Parse(flags.GetValueOrDefault("runs") ?? "200", CultureInfo.InvariantCulture);
        var concurrency = int.Parse(flags.GetValueOrDefault("concurrency") ?? "16", CultureInfo.InvariantCulture);
        var engines = (flags.GetValueOrDefault("engines") ?? "in-memory,azurite").Split(',');
        var hostDll = flags.GetValueOrDefault("host") ?? LocalHostProcess.FindHostDll();

        Console.WriteLine($"bench pipeline: {runs} sequential runs interleaved with bare python, then {runs * 2} runs at concurrency {concurrency}");
        foreach (var engine in engines)
        {
            await using var host = await LocalHostProcess.StartAsync(hostDll, engine);
            using var http = new HttpClient { BaseAddress = new Uri(host.Url), Timeout = TimeSpan.FromSeconds(120) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", host.ApiKey);

            // Warm-up: the JIT tiers the hot paths up over the first hundred-odd runs, sequential and concurrent.
            for (var i = 0; i < 30; i++)
            {
                await SubmitAsync(http);
                await BareAsync();
            }

            await AtConcurrencyAsync(concurrency, concurrency * 6, () => SubmitAsync(http));

            var viaHost = new List<double>();
            var bare = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                viaHost.Add(await SubmitAsync(http));
                bare.Add(await BareAsync());
            }

            // Throughput, then the same number of bare processes at the same concurrency: the machine's ceiling.
            var total = runs * 2;
            // Live children: the host's Azurite, and sandbox processes (the Python fork server with the runs it forked);
            // sandbox processes also include the runs' ended ones.
            static bool Azurite(string cmdline) => cmdline.Contains("azurite", StringComparison.Ordinal);
            var cpuBefore = ProcessCpu.Read(host.ProcessId);
            var (azuriteBefore, liveBefore) = ProcessCpu.LiveChildren(host.ProcessId, Azurite);
            var sandboxesBefore = cpuBefore.Children + liveBefore;
            var (hostWall, failures) = await AtConcurrencyAsync(concurrency, total, () => SubmitAsync(http));
            var cpuAfter = ProcessCpu.Read(host.ProcessId);
            var (azuriteAfter, liveAfter) = ProcessCpu.LiveChildren(host.ProcessId, Azurite);
            var sandboxesAfter = cpuAfter.Children + liveAfter;
            var (bareWall, _) = await AtConcurrencyAsync(concurrency, total, BareAsync);
            var throughput = total / hostWall.TotalSeconds;
            var ceiling = total / bareWall.TotalSeconds;

            var (hp50, hp95) = (Percentile(viaHost, 50), Percentile(viaHost, 95));
            var (bp50, bp95) = (Percentile(bare, 50), Percentile(bare, 95));
            Console.WriteLine();
            Console.WriteLine($"engine {engine}");
            Console.WriteLine($"  bare python3 -c 'print(1)'   p50 {bp50,8:0.0} ms   p95 {bp95,8:0.0} ms");
            Console.WriteLine($"  through the local host      p50 {hp50,8:0.0} ms   p95 {hp95,8:0.0} ms");
            Console.WriteLine($"  overhead                    p50 {hp50 - bp50,8:0.0} ms   p95 {hp95 - bp95,8:0.0} ms   ({hp50 / bp50:0.00}x at p50)");
            Console.WriteLine($"  throughput at concurrency {concurrency}: {throughput:0.0} runs/s ({total} runs, {failures} failed); " +
                $"bare python3 at the same concurrency: {ceiling:0.0} runs/s ({throughput / ceiling:0.00} of it) on {Environment.ProcessorCount} cores");
            Console.WriteLine($"  CPU per run in the host process: {(cpuAfter.Self - cpuBefore.Self).TotalMilliseconds / total:0.0} ms, " +
                $"in its sandbox processes: {(sandboxesAfter - sandboxesBefore).TotalMilliseconds / total:0.0} ms" +
                (azuriteAfter > TimeSpan.Zero ? $", in its Azurite: {(azuriteAfter - azuriteBefore).TotalMilliseconds / total:0.0} ms" : " (Azurite not counted)"));
        }

        return 0;
    }

    /// <summary>Runs <paramref name="code"/> (python, isolation none) through the host and waits for it; throws unless it succeeded.</summary>
    internal static async Task<double> SubmitAsync(HttpClient http, string code = "print(1)")
    {
        var body = $$"""{"code":"{{code}}","language":"python","isolationLevel":"none","timeout":30000}""";
        var clock = Stopwatch.StartNew();
        using var response = await http.PostAsync("v1/runs?wait=60", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK || !text.Contains("\"succeeded\"", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"run did not succeed: {(int)response.StatusCode} {text}");
        }

        return clock.Elapsed.TotalMilliseconds;
    }

    private static Task<double> BareAsync() => TimeProcessAsync("/usr/bin/python3", "-c", "print(1)");

    /// <summary>Wall time in ms of a bare process run to its end with its stdout read (the side-by-side reference of the benches).</summary>
    internal static async Task<double> TimeProcessAsync(string file, params string[] arguments)
    {
        var clock = Stopwatch.StartNew();
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        using var process = Process.Start(psi)!;
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return clock.Elapsed.TotalMilliseconds;
    }

    private static async Task<(TimeSpan Wall, int Failures)> AtConcurrencyAsync(int concurrency, int total, Func<Task<double>> one)
    {
        var clock = Stopwatch.StartNew();
        var failures = 0;
        await Concurrently.ForEachAsync(total, concurrency, async _ =>
        {
            try
            {
                await one();
            }
            catch (InvalidOperationException)
            {
                Interlocked.Increment(ref failures);
            }
        });
        return (clock.Elapsed, failures);
    }

    internal static double Percentile(List<double> values, int p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(p / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)];
    }
}
