using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Api;
using Sandstorm.Api.Batches;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Orchestrations.Batches;
using Sandstorm.Storage;
using Sandstorm.Testing;

namespace Sandstorm.Batch.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class BatchPipelineTests(AzuriteFixture azurite)
{
    private const string Tenant = "tenant-a";

    [Fact]
    public async Task Batch_OverSeveralChunks_SucceedsWithResultsInInputOrder()
    {
        // The in-process engine runs one work item per core; the 200-run batch runs on the real local host (LocalHostTests).
        await using var host = await BatchHost.StartAsync(azurite, concurrency: 8, chunkSize: 10);
        var (batchId, created) = await host.SubmitAsync(Tenant, BatchHost.PrintRequests(40));
        Assert.True(created);
        Assert.Equal(40, (await host.Batches.GetAsync(host.Client, Tenant, batchId, CancellationToken.None))!.Counts.Queued);

        await host.DrainQueueAsync();
        var maxRunning = 0;
        var view = await host.WaitForBatchAsync(Tenant, batchId, TimeSpan.FromSeconds(120), v => maxRunning = Math.Max(maxRunning, v.Counts.Running));

        Assert.Equal(BatchStatus.Completed, view.Status);
        Assert.Equal(new BatchCountsView(0, 0, 40, 0, 0), view.Counts);
        Assert.InRange(maxRunning, 1, 8);
        var results = await host.ResultsAsync(Tenant, batchId);
        Assert.Equal(Enumerable.Range(0, 40), results.Select(r => r.Index));
        Assert.All(results, r =>
        {
            Assert.Equal(RunStatus.Succeeded, r.Status);
            Assert.Equal(0, r.ExitCode);
            Assert.Equal($"{r.Index}\n", r.Stdout);
            Assert.Equal(BatchEvents.RunId(batchId, r.Index), r.RunId);
        });

        // A child is a normal run of the tenant, tagged with its batch.
        var child = await host.Services.GetRequiredService<RunService>().GetAsync(Tenant, results[37].RunId, CancellationToken.None);
        Assert.Equal(RunStatus.Succeeded, child!.Status);
        Assert.Equal("37\n", child.Stdout);
        Assert.Equal(batchId, (await host.Services.GetRequiredService<RunStore>().GetAsync(Tenant, results[37].RunId, CancellationToken.None))!.BatchId);
    }

    [Fact]
    public async Task SameMessage_DeliveredTwice_RunsEachItemOnce()
    {
        await using var host = await BatchHost.StartAsync(azurite, concurrency: 8, chunkSize: 10);
        var log = Path.Combine(Path.GetTempPath(), "sandstorm-batch-" + Guid.NewGuid().ToString("N") + ".log");
        try
        {
            var (batchId, _) = await host.SubmitAsync(Tenant, BatchHost.PrintRequests(30, log));
            var message = JsonSerializer.Serialize(
                new BatchMessage { TenantId = Tenant, BatchId = batchId, Manifest = BatchEvents.ManifestBlob(Tenant, batchId) }, Core.SandstormJson.Options);
            await host.Queue.SendMessageAsync(message);

            // Both copies are taken; the second finds the batch started. A third, handled mid-batch, changes nothing either.
            await host.DrainQueueAsync();
            var again = await host.Services.GetRequiredService<BatchIntake>().HandleAsync(host.Client, message, "redelivered", CancellationToken.None);
            Assert.True(again.Accepted);
            Assert.Contains("already started", again.Detail, StringComparison.Ordinal);

            var view = await host.WaitForBatchAsync(Tenant, batchId, TimeSpan.FromSeconds(60));
            Assert.Equal(30, view.Counts.Succeeded);
            var executions = (await File.ReadAllLinesAsync(log)).Select(int.Parse).ToList();
            Assert.Equal(Enumerable.Range(0, 30), executions.Order());
            Assert.Empty(await host.PoisonAsync());
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public async Task BadMessages_GoToPoisonQueueWithReason_AndStartNothing()
    {
        await using var host = await BatchHost.StartAsync(azurite);
        var payloads = host.Services.GetRequiredService<PayloadStore>();
        var badManifest = BatchManifest.ToJsonLines(BatchHost.PrintRequests(5)).Replace("\"python\"", "\"cobol\"", StringComparison.Ordinal);
        await payloads.PutBlobAsync($"{Tenant}/bad/manifest.jsonl", BinaryData.FromString(badManifest), CancellationToken.None);

        await host.Queue.CreateIfNotExistsAsync();
        await host.Queue.SendMessageAsync("{not json");
        await host.Queue.SendMessageAsync("""{"batchId":"b1","manifest":"x"}""");
        await host.Queue.SendMessageAsync($$"""{"tenantId":"{{Tenant}}","batchId":"missing","manifest":"{{Tenant}}/nope.jsonl"}""");
        await host.Queue.SendMessageAsync($$"""{"tenantId":"{{Tenant}}","batchId":"bad","manifest":"{{Tenant}}/bad/manifest.jsonl"}""");
        await host.Queue.SendMessageAsync($$"""{"tenantId":"{{Tenant}}","batchId":"theft","manifest":"other-tenant/x/manifest.jsonl"}""");
        await host.Queue.SendMessageAsync($$$"""{"tenantId":"{{{Tenant}}}","request":{"code":"print(1)","language":"python","timeout":0}}""");
        await host.DrainQueueAsync();

        var poison = await host.PoisonAsync();
        Assert.Equal(6, poison.Count);
        Assert.Contains(poison, p => p.Body == "{not json" && p.Reason.StartsWith("malformed message", StringComparison.Ordinal));
        Assert.Contains(poison, p => p.Reason.Contains("tenantId is required", StringComparison.Ordinal));
        Assert.Contains(poison, p => p.Reason.Contains("was not found", StringComparison.Ordinal));
        Assert.Contains(poison, p => p.Reason.Contains("items[0].language", StringComparison.Ordinal));
        Assert.Contains(poison, p => p.Reason.Contains($"under '{Tenant}/'", StringComparison.Ordinal));
        Assert.Contains(poison, p => p.Reason.Contains("timeout", StringComparison.Ordinal) && p.Body.Contains("print(1)", StringComparison.Ordinal));

        // Nothing half-started: no batch rows, no orchestrations.
        var store = host.Services.GetRequiredService<BatchStore>();
        Assert.Null(await store.GetAsync(Tenant, "bad", CancellationToken.None));
        Assert.Null(await store.GetAsync(Tenant, "missing", CancellationToken.None));
        Assert.Null(await host.Client.GetInstanceAsync("bad"));
    }

    [Fact]
    public async Task SingleRunMessage_StartsOneNormalRun_EvenWhenRedelivered()
    {
        await using var host = await BatchHost.StartAsync(azurite);
        var intake = host.Services.GetRequiredService<BatchIntake>();
        var body = $$$"""{"tenantId":"{{{Tenant}}}","request":{"code":"print(42)","language":"python","isolationLevel":"none","timeout":30000}}""";
        var first = await intake.HandleAsync(host.Client, body, "msg-1", CancellationToken.None);
        var second = await intake.HandleAsync(host.Client, body, "msg-1", CancellationToken.None);
        Assert.True(first.Accepted);
        Assert.Contains("already started", second.Detail, StringComparison.Ordinal);
        var runId = RunIds.FromIdempotencyKey(Tenant, "queue:msg-1");
        var run = await Poll.UntilAsync(
            () => host.Services.GetRequiredService<RunService>().GetAsync(Tenant, runId, CancellationToken.None),
            r => r?.Status.IsTerminal() == true,
            TimeSpan.FromSeconds(30),
            "the queued run");
        Assert.Equal("42\n", run!.Stdout);
    }

    [Fact]
    public async Task BatchesOfOneTenant_TakeTurns_SoTheTenantLimitHolds_WhileOtherTenantsRun()
    {
        await using var host = await BatchHost.StartAsync(azurite, concurrency: 3, chunkSize: 10);
        var log = Path.Combine(Path.GetTempPath(), "sandstorm-lane-" + Guid.NewGuid().ToString("N") + ".log");
        try
        {
            var (first, _) = await host.SubmitAsync(Tenant, Timed(log, "a1", 6));
            var (second, _) = await host.SubmitAsync(Tenant, Timed(log, "a2", 6));
            var (third, _) = await host.SubmitAsync(Tenant, Timed(log, "a3", 3));
            var (other, _) = await host.SubmitAsync("tenant-b", Timed(log, "b1", 6));
            await host.DrainQueueAsync();

            // The second waits behind the first; cancelled while it waits, it runs nothing and the third still gets its turn.
            await Poll.UntilAsync(
                () => host.Batches.GetAsync(host.Client, Tenant, first, CancellationToken.None),
                v => v!.Counts.Running > 0,
                TimeSpan.FromSeconds(30),
                "the first batch to run");
            Assert.Equal(BatchStatus.Queued, (await host.Batches.GetAsync(host.Client, Tenant, second, CancellationToken.None))!.Status);
            Assert.True(await host.Batches.CancelAsync(host.Client, Tenant, second, CancellationToken.None));

            foreach (var (tenant, batch) in new[] { (Tenant, first), (Tenant, second), (Tenant, third), ("tenant-b", other) })
            {
                await host.WaitForBatchAsync(tenant, batch, TimeSpan.FromSeconds(120));
            }

            Assert.Equal(BatchStatus.Cancelled, (await host.Batches.GetAsync(host.Client, Tenant, second, CancellationToken.None))!.Status);
            Assert.All(await host.ResultsAsync(Tenant, second), r => Assert.Equal(RunStatus.Cancelled, r.Status));
            Assert.Equal(3, (await host.ResultsAsync(Tenant, third)).Count(r => r.Status == RunStatus.Succeeded));

            var events = (await File.ReadAllLinesAsync(log)).Select(l => l.Split(' ')).Select(p => (Batch: p[0], Time: double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture), Start: p[2] == "start")).ToList();
            Assert.DoesNotContain(events, e => e.Batch == "a2");
            Assert.True(events.Where(e => e.Batch == "a3").Min(e => e.Time) >= events.Where(e => e.Batch == "a1").Max(e => e.Time), "the third batch started before the first ended");
            Assert.True(events.Where(e => e.Batch == "b1").Min(e => e.Time) < events.Where(e => e.Batch == "a1").Max(e => e.Time), "another tenant's batch waited for this tenant's");
            var running = 0;
            var peak = 0;
            foreach (var e in events.Where(e => e.Batch.StartsWith('a')).OrderBy(e => e.Time).ThenBy(e => e.Start))
            {
                running += e.Start ? 1 : -1;
                peak = Math.Max(peak, running);
            }

            Assert.InRange(peak, 1, 3);
        }
        finally
        {
            File.Delete(log);
        }
    }

    /// <summary>Runs that log when they start and end (epoch seconds), and sleep in between.</summary>
    private static List<RunRequest> Timed(string log, string batch, int count) =>
        [.. Enumerable.Range(0, count).Select(i => new RunRequest
        {
            Language = "python",
            IsolationLevel = IsolationLevel.None,
            Timeout = 30_000,
            Code = $"import time\nlog = open({JsonSerializer.Serialize(log)}, 'a')\nlog.write('{batch} %.6f start\\n' % time.time()); log.flush()\n"
                + $"time.sleep(0.4)\nlog.write('{batch} %.6f end\\n' % time.time())\nprint({i})",
        })];

    [Fact]
    public async Task Cancel_StopsRunningChildren_AndStartsNoMore()
    {
        await using var host = await BatchHost.StartAsync(azurite, concurrency: 4, chunkSize: 20);
        var (batchId, _) = await host.SubmitAsync(Tenant, BatchHost.PrintRequests(40, sleepSeconds: 8));
        await host.DrainQueueAsync();
        await Poll.UntilAsync(
            () => host.Batches.GetAsync(host.Client, Tenant, batchId, CancellationToken.None),
            v => v!.Counts.Running == 4,
            TimeSpan.FromSeconds(30),
            "four runs in flight");

        Assert.True(await host.Batches.CancelAsync(host.Client, Tenant, batchId, CancellationToken.None));
        var view = await host.WaitForBatchAsync(Tenant, batchId, TimeSpan.FromSeconds(30));

        Assert.Equal(BatchStatus.Cancelled, view.Status);
        Assert.Equal(new BatchCountsView(0, 0, 0, 0, 40), view.Counts);
        var results = await host.ResultsAsync(Tenant, batchId);
        Assert.Equal(Enumerable.Range(0, 40), results.Select(r => r.Index));
        Assert.All(results, r => Assert.Equal(RunStatus.Cancelled, r.Status));
        var runs = host.Services.GetRequiredService<RunService>();
        Assert.Equal(RunStatus.Cancelled, (await runs.GetAsync(Tenant, BatchEvents.RunId(batchId, 0), CancellationToken.None))!.Status);
        Assert.Equal(RunStatus.Cancelled, (await runs.GetAsync(Tenant, BatchEvents.RunId(batchId, 10), CancellationToken.None))!.Status);
        Assert.False(await host.Batches.CancelAsync(host.Client, Tenant, batchId, CancellationToken.None));
    }

    [Fact]
    public async Task Submit_InvalidItemOrTooMany_IsRefusedWithNothingStored()
    {
        await using var host = await BatchHost.StartAsync(azurite);
        var requests = BatchHost.PrintRequests(5);
        requests[3] = requests[3] with { Language = "cobol" };
        var invalid = await Assert.ThrowsAsync<Core.Errors.SandstormException>(() => host.SubmitAsync(Tenant, requests));
        Assert.Equal(ErrorCodes.ValidationFailed, invalid.Code);
        Assert.Equal(400, invalid.Status);
        Assert.Contains("items[3].language", invalid.Errors!.Keys);

        var tooMany = await Assert.ThrowsAsync<Core.Errors.SandstormException>(() => host.SubmitAsync(Tenant, BatchHost.PrintRequests(10_001)));
        Assert.Equal(413, tooMany.Status);
        Assert.Contains("10000", tooMany.Message, StringComparison.Ordinal);

        var malformed = await Assert.ThrowsAsync<Core.Errors.SandstormException>(
            () => host.Batches.SubmitAsync(Tenant, """[{"code":"print(1)","language":"python"},{"code":5}]""", jsonLines: false, null, CancellationToken.None));
        Assert.Equal(ErrorCodes.MalformedJson, malformed.Code);
        Assert.Contains(malformed.Errors!.Keys, k => k.StartsWith("items[1]", StringComparison.Ordinal));

        Assert.False(await host.Queue.ExistsAsync() && (await host.Queue.GetPropertiesAsync()).Value.ApproximateMessagesCount > 0);
        Assert.Empty(await host.Services.GetRequiredService<PayloadStore>().ListAsync(Tenant + "/", CancellationToken.None));
    }

    [Fact]
    public async Task AnotherTenantsBatch_IsNotFound()
    {
        await using var host = await BatchHost.StartAsync(azurite);
        var (batchId, _) = await host.SubmitAsync(Tenant, BatchHost.PrintRequests(2), key: "k1");
        Assert.Equal((batchId, false), await host.SubmitAsync(Tenant, BatchHost.PrintRequests(2), key: "k1"));
        await Assert.ThrowsAsync<Core.Errors.SandstormException>(() => host.SubmitAsync(Tenant, BatchHost.PrintRequests(3), key: "k1"));

        Assert.Null(await host.Batches.GetAsync(host.Client, "tenant-b", batchId, CancellationToken.None));
        Assert.Null(await host.Batches.CancelAsync(host.Client, "tenant-b", batchId, CancellationToken.None));
        Assert.Null(await host.Batches.OpenResultsAsync("tenant-b", batchId, CancellationToken.None));
    }
}
