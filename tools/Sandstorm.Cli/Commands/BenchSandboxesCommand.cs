using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Sandstorm.Cli.Commands;

/// <summary>
/// <c>sandstorm bench sandboxes</c>: kept sandboxes on the local host, each figure beside the bare operation measured in
/// the same run — create → ready (standard and strong, from the warm pools), a command's round trip against a bare
/// <c>bwrap</c> exec of the same command, streamed stdout throughput to an SSE client against the same bytes through a
/// pipe, and many idle sandboxes held at once with the memory each costs.
/// </summary>
public static class BenchSandboxesCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var (flags, _) = ControlPlane.Parse(args);
        var creates = int.Parse(flags.GetValueOrDefault("creates") ?? "30", CultureInfo.InvariantCulture);
        var commands = int.Parse(flags.GetValueOrDefault("commands") ?? "200", CultureInfo.InvariantCulture);
        var idle = int.Parse(flags.GetValueOrDefault("idle") ?? "200", CultureInfo.InvariantCulture);
        var streamMiB = int.Parse(flags.GetValueOrDefault("stream-mib") ?? "256", CultureInfo.InvariantCulture);
        var hostDll = flags.GetValueOrDefault("host") ?? LocalHostProcess.FindHostDll();

        Console.WriteLine($"bench sandboxes: {creates} creates per level, {commands} command round trips, {streamMiB} MiB streamed, {idle} idle sandboxes");
        await using var host = await LocalHostProcess.StartAsync(hostDll, "in-memory", extraArguments: ["--dev-max-sandboxes", (idle + 10).ToString(CultureInfo.InvariantCulture)]);
        using var http = new HttpClient { BaseAddress = new Uri(host.Url), Timeout = TimeSpan.FromMinutes(5) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", host.ApiKey);

        // 1. create → ready, from the warm pools (each create waits for its pool to be refilled first, as a pool is between bursts).
        foreach (var (level, refill) in new[] { ("standard", TimeSpan.FromSeconds(1)), ("strong", TimeSpan.FromSeconds(3)) })
        {
            await Task.Delay(refill * 2);
            var times = new List<double>();
            for (var i = 0; i < creates; i++)
            {
                var clock = Stopwatch.StartNew();
                var id = await CreateAsync(http, level);
                times.Add(clock.Elapsed.TotalMilliseconds);
                await DeleteAsync(http, id);
                await Task.Delay(refill);
            }

            Console.WriteLine($"  create → ready ({level,-8})  p50 {BenchPipelineCommand.Percentile(times, 50),7:0.0} ms   p95 {BenchPipelineCommand.Percentile(times, 95),7:0.0} ms   (POST /v1/sandboxes until 201 running)");
        }

        // 2. A command's round trip: `true` through the API (POST, SSE to its end event) against a bare bwrap exec of `true`.
        var sandbox = await CreateAsync(http, "standard");
        for (var i = 0; i < 20; i++)
        {
            await CommandAsync(http, sandbox, "true");
            await BareBwrapAsync();
        }

        var viaApi = new List<double>();
        var bare = new List<double>();
        for (var i = 0; i < commands; i++)
        {
            viaApi.Add(await CommandAsync(http, sandbox, "true"));
            bare.Add(await BareBwrapAsync());
        }

        var (ap50, bp50) = (BenchPipelineCommand.Percentile(viaApi, 50), BenchPipelineCommand.Percentile(bare, 50));
        Console.WriteLine($"  command `true` via the API    p50 {ap50,7:0.0} ms   p95 {BenchPipelineCommand.Percentile(viaApi, 95),7:0.0} ms");
        Console.WriteLine($"  bare `bwrap ... true`         p50 {bp50,7:0.0} ms   p95 {BenchPipelineCommand.Percentile(bare, 95),7:0.0} ms");
        Console.WriteLine($"  command round trip above bare bwrap: p50 {ap50 - bp50:+0.0;-0.0} ms (target ≤ 10 ms)");

        // 3. Streamed stdout: MiB of output from a command to this SSE client, against the same command's bytes through a pipe.
        var (streamed, streamSeconds) = await StreamAsync(http, sandbox, streamMiB);
        var (piped, pipeSeconds) = await PipeAsync(streamMiB);
        Console.WriteLine($"  stdout streamed to an SSE client: {streamed / 1048576.0 / streamSeconds,7:0.0} MiB/s ({streamed / 1048576} MiB); " +
            $"the same command into a bare pipe: {piped / 1048576.0 / pipeSeconds:0.0} MiB/s (target ≥ 50 MB/s)");
        await DeleteAsync(http, sandbox);

        // 4. Many idle sandboxes at once: the machine's available memory before and after, per sandbox.
        await Task.Delay(TimeSpan.FromSeconds(2));
        var before = AvailableMiB();
        var held = new List<string>();
        var clockIdle = Stopwatch.StartNew();
        var failure = "";
        try
        {
            await Concurrently.ForEachAsync(idle, 4, async _ =>
            {
                var id = await CreateAsync(http, "standard");
                lock (held)
                {
                    held.Add(id);
                }
            });
        }
        catch (InvalidOperationException e)
        {
            failure = $" (stopped: {e.Message})";
        }

        var createdIn = clockIdle.Elapsed;
        await Task.Delay(TimeSpan.FromSeconds(2));
        var after = AvailableMiB();
        var alive = 0;
        foreach (var id in held.Take(20))
        {
            alive += (await CommandAsync(http, id, "true")) > 0 ? 1 : 0;
        }

        Console.WriteLine($"  idle sandboxes held at once: {held.Count} of {idle} in {createdIn.TotalSeconds:0.0} s{failure}; " +
            $"{(before - after) / Math.Max(1, held.Count):0.0} MiB of the machine's memory each ({before - after:0} MiB in all); {alive} of {Math.Min(20, held.Count)} sampled answer a command");
        await Concurrently.ForEachAsync(held.Count, 8, i => DeleteAsync(http, held[i]));
        return 0;
    }

    private static async Task<string> CreateAsync(HttpClient http, string isolation)
    {
        using var response = await http.PostAsync("v1/sandboxes", new StringContent($$"""{"isolationLevel":"{{isolation}}","timeout":600}""", Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"create ({isolation}): {(int)response.StatusCode} {text}");
        }

        return JsonDocument.Parse(text).RootElement.GetProperty("id").GetString()!;
    }

    private static async Task DeleteAsync(HttpClient http, string id) => (await http.DeleteAsync($"v1/sandboxes/{id}")).Dispose();

    /// <summary>Runs a command and reads its event stream to the end event; answers the wall time in ms.</summary>
    private static async Task<double> CommandAsync(HttpClient http, string sandbox, string cmd)
    {
        var clock = Stopwatch.StartNew();
        using var response = await http.SendAsync(
            new HttpRequestMessage(HttpMethod.Post, $"v1/sandboxes/{sandbox}/commands") { Content = new StringContent(JsonSerializer.Serialize(new { cmd }), Encoding.UTF8, "application/json") },
            HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"command: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        while (await reader.ReadLineAsync() is { } line && line != "event: end")
        {
        }

        return clock.Elapsed.TotalMilliseconds;
    }

    // The same command in a bwrap with new namespaces over a read-only host root.
    private static Task<double> BareBwrapAsync() => BenchPipelineCommand.TimeProcessAsync(
        "/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "/bin/bash", "-c", "true");

    private static string StreamCommand(int mib) => $"head -c {mib}M /dev/zero | tr '\\0' 'x' | fold -w 4096";

    /// <summary>Bytes of stdout payload received over SSE, and the seconds it took.</summary>
    private static async Task<(long Bytes, double Seconds)> StreamAsync(HttpClient http, string sandbox, int mib)
    {
        var clock = Stopwatch.StartNew();
        using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"v1/sandboxes/{sandbox}/commands") { Content = new StringContent(JsonSerializer.Serialize(new { cmd = StreamCommand(mib), timeout = 300_000 }), Encoding.UTF8, "application/json") }, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        long bytes = 0;
        string? name = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && name == "stdout")
            {
                bytes += JsonDocument.Parse(line.AsMemory(6)).RootElement.GetProperty("data").GetString()!.Length;
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && name == "end")
            {
                break;
            }
        }

        return (bytes, clock.Elapsed.TotalSeconds);
    }

    private static async Task<(long Bytes, double Seconds)> PipeAsync(int mib)
    {
        var clock = Stopwatch.StartNew();
        var psi = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(StreamCommand(mib));
        using var process = Process.Start(psi)!;
        var buffer = new byte[64 * 1024];
        long bytes = 0;
        int read;
        while ((read = await process.StandardOutput.BaseStream.ReadAsync(buffer)) > 0)
        {
            bytes += read;
        }

        await process.WaitForExitAsync();
        return (bytes, clock.Elapsed.TotalSeconds);
    }

    private static double AvailableMiB()
    {
        var line = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemAvailable:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }
}
