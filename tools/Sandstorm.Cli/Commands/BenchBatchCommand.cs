using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Sandstorm.Cli.Commands;

/// <summary>
/// <c>sandstorm bench batch</c>: N runs of <c>print(i)</c> as one batch through the local host (submit → all results),
/// against the same N runs submitted one by one with <c>?wait=</c> at the same concurrency, on one fresh host.
/// </summary>
public static class BenchBatchCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        var (flags, _) = ControlPlane.Parse(args);
        var runs = int.Parse(flags.GetValueOrDefault("runs") ?? "1000", CultureInfo.InvariantCulture);
        var concurrency = int.Parse(flags.GetValueOrDefault("concurrency") ?? "16", CultureInfo.InvariantCulture);
        var engine = flags.GetValueOrDefault("engine") ?? "azurite";
        var hostDll = flags.GetValueOrDefault("host") ?? LocalHostProcess.FindHostDll();

        Console.WriteLine($"bench batch: {runs} runs of print(i), engine {engine}, concurrency {concurrency}");
        await using var host = await LocalHostProcess.StartAsync(hostDll, engine, new Dictionary<string, string>
        {
            ["Sandstorm__Batches__MaxConcurrentRunsPerTenant"] = concurrency.ToString(CultureInfo.InvariantCulture),
        });
        using var http = new HttpClient { BaseAddress = new Uri(host.Url), Timeout = TimeSpan.FromSeconds(120) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", host.ApiKey);

        // Warm up both paths (JIT, tables, queues) before measuring.
        await RunBatchAsync(http, 20);
        await RunOneByOneAsync(http, 20, concurrency);

        var (batchWall, submitMs, batchFailed) = await RunBatchAsync(http, runs);
        var (singleWall, singleFailed) = await RunOneByOneAsync(http, runs, concurrency);

        Console.WriteLine();
        Console.WriteLine($"  one batch of {runs}        wall {batchWall.TotalSeconds,7:0.00} s   {runs / batchWall.TotalSeconds,6:0.0} runs/s   (submit {submitMs:0} ms, {batchFailed} not succeeded)");
        Console.WriteLine($"  {runs} single runs         wall {singleWall.TotalSeconds,7:0.00} s   {runs / singleWall.TotalSeconds,6:0.0} runs/s   ({singleFailed} failed)");
        var overhead = batchWall - singleWall;
        Console.WriteLine($"  batch overhead             {overhead.TotalSeconds,7:0.00} s   ({overhead.TotalMilliseconds / runs:0.0} ms per run, {batchWall / singleWall:0.00}x the one-by-one wall time)");
        return batchFailed + singleFailed == 0 ? 0 : 1;
    }

    private static async Task<(TimeSpan Wall, double SubmitMs, int NotSucceeded)> RunBatchAsync(HttpClient http, int runs)
    {
        var lines = new StringBuilder();
        for (var i = 0; i < runs; i++)
        {
            lines.Append(CultureInfo.InvariantCulture, $$"""{"code":"print({{i}})","language":"python","isolationLevel":"none","timeout":30000}""").Append('\n');
        }

        var clock = Stopwatch.StartNew();
        using var response = await http.PostAsync("v1/batches", new StringContent(lines.ToString(), Encoding.UTF8, "application/x-ndjson"));
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"batch refused: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        var submitMs = clock.Elapsed.TotalMilliseconds;
        var location = response.Headers.Location!.ToString();
        while (true)
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync(location));
            if (doc.RootElement.GetProperty("status").GetString() is "completed" or "cancelled")
            {
                var counts = doc.RootElement.GetProperty("counts");
                var wall = clock.Elapsed;
                return (wall, submitMs, runs - counts.GetProperty("succeeded").GetInt32());
            }

            await Task.Delay(50);
        }
    }

    private static async Task<(TimeSpan Wall, int Failed)> RunOneByOneAsync(HttpClient http, int runs, int concurrency)
    {
        var clock = Stopwatch.StartNew();
        var failed = 0;
        await Concurrently.ForEachAsync(runs, concurrency, async i =>
        {
            try
            {
                await BenchPipelineCommand.SubmitAsync(http, $"print({i})");
            }
            catch (InvalidOperationException)
            {
                Interlocked.Increment(ref failed);
            }
        });
        return (clock.Elapsed, failed);
    }
}
