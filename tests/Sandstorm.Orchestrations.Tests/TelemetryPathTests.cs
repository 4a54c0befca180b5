using Azure.Storage.Blobs;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sandstorm.Core.Contracts;
using Sandstorm.Routing;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Storage;
using Sandstorm.Telemetry;
using Sandstorm.Testing;

namespace Sandstorm.Orchestrations.Tests;

/// <summary>The ingestion path on Azurite: batched appends, the learner tailing other writers, the retrain reading the log.</summary>
[Collection(AzuriteCollection.Name)]
public sealed class TelemetryPathTests(AzuriteFixture azurite)
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 10, 30, 0, TimeSpan.Zero);

    private static RoutingObservation Outcome(int i, bool ok = true) => new()
    {
        RunId = $"run-{i}",
        Time = Now.AddSeconds(i),
        Workload = new Workload { Language = Languages.Python, CodeLength = 100 + i, Cpu = 1, MemoryMiB = 512, TimeoutMs = 30_000, Constraints = new RunConstraints { PreferredRegion = "eu-west" } },
        Route = new RouteCandidate("e2b", "firecracker", "us-east"),
        Price = new PriceSheet { VcpuSecond = 0.000014, GibSecond = 0.0000045, GranularitySeconds = 1 },
        CostUsd = 0.0001,
        LatencyMs = 2000,
        Ok = ok,
        PredictedCostUsd = 0.00005,
        PredictedLatencyMs = 1000,
    };

    [Fact]
    public async Task Publish_ThenFlush_BatchesAppendsAndOtherInstancesLearnAndRetrainFromTheLog()
    {
        var container = new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient("tel-" + Guid.NewGuid().ToString("N")[..12]);
        var time = new FakeTimeProvider(Now);
        var log = new AppendBlobTelemetryLog(container, "writer-a", time);
        var ingestor = new TelemetryIngestor(log, new TelemetryOptions { MaxBatchEvents = 400 }, NullLogger<TelemetryIngestor>.Instance);
        var appends = 0;
        ingestor.OnBatchWritten = _ => appends++;
        var localRouter = new LightGbmRouter(new RoutingModelHolder(new InMemoryModelStore()), new RoutingOptions(), new SeededExplorationRandom(1));
        var learner = new PublishingRoutingLearner(localRouter, ingestor, new TelemetryWriterId("writer-a"));

        // Another instance tails the log from before anything was written.
        var otherRouter = new LightGbmRouter(new RoutingModelHolder(new InMemoryModelStore()), new RoutingOptions(), new SeededExplorationRandom(1));
        var otherFeed = new TelemetryLearnerFeed(new TelemetryTail(container, "writer-b", time), otherRouter, new TelemetryOptions(), time, NullLogger<TelemetryLearnerFeed>.Instance);
        var ownFeed = new TelemetryLearnerFeed(new TelemetryTail(container, "writer-a", time), localRouter, new TelemetryOptions(), time, NullLogger<TelemetryLearnerFeed>.Instance);
        await otherFeed.PollOnceAsync(CancellationToken.None);

        await ingestor.StartAsync(CancellationToken.None);
        for (var i = 0; i < 1000; i++)
        {
            learner.Observe(Outcome(i, ok: i % 10 != 0));
        }

        ingestor.Publish(new TelemetryEvent { Kind = TelemetryKind.EdgeSample, Time = Now, AgentId = "agent-1", Name = "exec" });
        await ingestor.FlushAsync(CancellationToken.None);
        await ingestor.StopAsync(CancellationToken.None);

        Assert.Equal(1001, ingestor.Written);
        Assert.Equal(0, ingestor.Dropped);
        Assert.InRange(appends, 3, 1001 / 2);   // batched: at most 400 events per append, never one per event

        // The writer's own feed skips its blob (it learnt them directly); another instance learns every run outcome.
        Assert.Equal(0, await ownFeed.PollOnceAsync(CancellationToken.None));
        Assert.Equal(1000, await otherFeed.PollOnceAsync(CancellationToken.None));
        var key = CandidateEnumerator.HealthKey("e2b", "us-east");
        Assert.Equal(localRouter.LearntFailureRate(key, Now.AddSeconds(1000)), otherRouter.LearntFailureRate(key, Now.AddSeconds(1000)), 6);
        Assert.True(otherRouter.LearntFailureRate(key, Now.AddSeconds(1000)) > 0.05);
        Assert.Equal(0, await otherFeed.PollOnceAsync(CancellationToken.None));

        // The re-optimisation reads the same outcomes back, with their features.
        var observations = await new TelemetryObservationSource(log).GetObservationsAsync(Now.AddHours(-1), Now.AddHours(1), CancellationToken.None);
        Assert.Equal(1000, observations.Count);
        Assert.Equal("eu-west", observations[5].Workload.Constraints!.PreferredRegion);
        Assert.Equal(105, observations[5].Workload.CodeLength);
        Assert.Equal(1000, observations[5].PredictedLatencyMs);
        Assert.False(observations[0].Ok);
    }
}
