using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Sandstorm.Orchestrations.Batches;
using Sandstorm.Storage;
using Sandstorm.Testing;

namespace Sandstorm.Batch.Tests;

/// <summary>
/// The real local host (child process, Azurite-durable engine, its hosted queue listener): HTTP batch API, and a host
/// killed with SIGKILL mid-batch that, started again, finishes the batch with every item exactly once.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class LocalHostRestartTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Batch_Of200_ThroughLocalHost_SucceedsWithResultsInOrder()
    {
        var state = Directory.CreateTempSubdirectory("sandstorm-batch-host-").FullName;
        var port = AzuriteProcess.FreePort();
        var host = await StartHostAsync(state, "B" + Guid.NewGuid().ToString("N")[..10], port, concurrency: 16, chunkSize: 100);
        try
        {
            using var http = Client(port, await File.ReadAllTextAsync(Path.Combine(state, "dev-api-key")));
            var jsonl = BatchManifest.ToJsonLines(BatchHost.PrintRequests(200));
            using var accepted = await http.PostAsync("v1/batches", new StringContent(jsonl, Encoding.UTF8, "application/jsonl"));
            Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
            var location = accepted.Headers.Location!.ToString();
            var done = await Poll.UntilAsync(() => CountsAsync(http, location), c => c!.Status is "completed", TimeSpan.FromSeconds(300), "200 runs");
            Assert.Equal(200, done!.Succeeded);

            var results = (await http.GetStringAsync(location + "/results")).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonSerializer.Deserialize<BatchResultLine>(l, Core.SandstormJson.Options)!).ToList();
            Assert.Equal(Enumerable.Range(0, 200), results.Select(r => r.Index));
            Assert.All(results, r => Assert.Equal($"{r.Index}\n", r.Stdout));
            using var child = JsonDocument.Parse(await http.GetStringAsync($"v1/runs/{results[199].RunId}"));
            Assert.Equal("succeeded", child.RootElement.GetProperty("status").GetString());
        }
        finally
        {
            host.Kill(entireProcessTree: true);
            await host.WaitForExitAsync();
            host.Dispose();
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task HostKilledMidBatch_ResumesAndFinishes_EachItemOnce()
    {
        var state = Directory.CreateTempSubdirectory("sandstorm-batch-host-").FullName;
        var hub = "B" + Guid.NewGuid().ToString("N")[..10];
        var log = Path.Combine(state, "executions.log");
        var port = AzuriteProcess.FreePort();
        var host = await StartHostAsync(state, hub, port);
        try
        {
            using var http = Client(port, await File.ReadAllTextAsync(Path.Combine(state, "dev-api-key")));

            // Refused input: problem+json naming the item, and another tenant's view of a batch is 404.
            var requests = BatchHost.PrintRequests(60, log, sleepSeconds: 0.3);
            var bad = JsonSerializer.Serialize(requests.Select((r, i) => i == 7 ? r with { Timeout = 0 } : r), Core.SandstormJson.Options);
            using (var refused = await http.PostAsync("v1/batches", new StringContent(bad, Encoding.UTF8, "application/json")))
            {
                Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
                Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
                Assert.Contains("items[7].timeout", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            var jsonl = BatchManifest.ToJsonLines(requests);
            using var submit = new HttpRequestMessage(HttpMethod.Post, "v1/batches") { Content = new StringContent(jsonl, Encoding.UTF8, "application/x-ndjson") };
            submit.Headers.Add("Idempotency-Key", "restart-" + hub);
            using var accepted = await http.SendAsync(submit);
            Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
            var location = accepted.Headers.Location!.ToString();
            var batchId = location.Split('/')[^1];

            var otherKey = await CreateTenantKeyAsync("tenant-other");
            using (var other = Client(port, otherKey))
            {
                Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync(location)).StatusCode);
                Assert.Equal(HttpStatusCode.NotFound, (await other.DeleteAsync(location)).StatusCode);
            }

            // Kill the host once some items have run but most have not.
            await Poll.UntilAsync(async () => await CountsAsync(http, location), c => c!.Succeeded >= 8, TimeSpan.FromSeconds(60), "8 items to succeed");
            host.Kill(entireProcessTree: true);
            await host.WaitForExitAsync();
            var before = await CountsAsync(http, location, throwIfDown: false);
            Assert.Null(before);

            host = await StartHostAsync(state, hub, port);
            var done = await Poll.UntilAsync(
                async () => await CountsAsync(http, location),
                c => c!.Status is "completed",
                TimeSpan.FromSeconds(150),
                "the batch to finish after the restart");
            Assert.Equal(60, done!.Succeeded);

            var results = (await http.GetStringAsync(location + "/results")).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => JsonSerializer.Deserialize<BatchResultLine>(l, Core.SandstormJson.Options)!).ToList();
            Assert.Equal(Enumerable.Range(0, 60), results.Select(r => r.Index));
            Assert.All(results, r => Assert.Equal($"{r.Index}\n", r.Stdout));

            // Every item ran; an activity caught mid-flight by the kill may run again (at-least-once), never more than those in flight.
            var executions = (await File.ReadAllLinesAsync(log)).Select(int.Parse).ToList();
            Assert.Equal(Enumerable.Range(0, 60), executions.Distinct().Order());
            Assert.InRange(executions.Count - 60, 0, 16);
        }
        finally
        {
            host.Kill(entireProcessTree: true);
            await host.WaitForExitAsync();
            host.Dispose();
            Directory.Delete(state, recursive: true);
        }
    }

    private sealed record Counts(string Status, int Succeeded);

    private static async Task<Counts?> CountsAsync(HttpClient http, string location, bool throwIfDown = true)
    {
        try
        {
            using var doc = JsonDocument.Parse(await http.GetStringAsync(location));
            return new Counts(doc.RootElement.GetProperty("status").GetString()!, doc.RootElement.GetProperty("counts").GetProperty("succeeded").GetInt32());
        }
        catch (HttpRequestException) when (!throwIfDown)
        {
            return null;
        }
    }

    private async Task<string> CreateTenantKeyAsync(string tenant)
    {
        var storage = new StorageOptions();
        var tables = new TableProvider(new Azure.Data.Tables.TableServiceClient(azurite.ConnectionString), Options.Create(storage));
        // These tenants run trusted test code as plain processes, so they opt in to isolation none.
        await new TenantStore(tables, TimeProvider.System).SetAsync(tenant, new Core.Contracts.TenantSettings { AllowUnisolated = true }, CancellationToken.None);
        return await new ApiKeyStore(tables, TimeProvider.System).CreateAsync(tenant, "test", CancellationToken.None);
    }

    private static HttpClient Client(int port, string key)
    {
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key.Trim());
        return http;
    }

    private async Task<Process> StartHostAsync(string state, string hub, int port, int concurrency = 4, int chunkSize = 25)
    {
        var dll = FindHostDll();
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { dll, "--durable", "azurite", "--storage", azurite.ConnectionString, "--urls", $"http://127.0.0.1:{port}", "--state", state, "--hub", hub })
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        psi.Environment["Sandstorm__Batches__MaxConcurrentRunsPerTenant"] = concurrency.ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment["Sandstorm__Batches__ChunkSize"] = chunkSize.ToString(System.Globalization.CultureInfo.InvariantCulture);
        // Each test's host has its own batch queue on the shared Azurite.
        psi.Environment["Sandstorm__Storage__BatchQueue"] = "b" + hub.ToLowerInvariant();
        var process = Process.Start(psi)!;
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        process.ErrorDataReceived += (_, e) => output.Enqueue(e.Data ?? "");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(90))
        {
            Assert.False(process.HasExited, "the local host exited: " + string.Join('\n', output));
            try
            {
                if ((await http.GetAsync("v1/health")).IsSuccessStatusCode && File.Exists(Path.Combine(state, "dev-api-key")))
                {
                    return process;
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

        throw new TimeoutException("the local host did not start: " + string.Join('\n', output));
    }

    private static string FindHostDll()
    {
        var config = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "functions", "Sandstorm.Local", "bin", config, "net10.0", "Sandstorm.Local.dll");
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw new FileNotFoundException("Sandstorm.Local.dll not found: build the solution first");
    }
}
