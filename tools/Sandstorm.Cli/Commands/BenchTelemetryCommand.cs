using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Specialized;
using Microsoft.Extensions.Logging.Abstractions;
using Sandstorm.Core.Contracts;
using Sandstorm.Routing;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Storage;
using Sandstorm.Storage;
using Sandstorm.Telemetry;

namespace Sandstorm.Cli.Commands;

/// <summary>
/// <c>sandstorm bench telemetry [--events N] [--storage CONNSTR]</c>: the ingestion path's throughput into durable storage
/// (Azurite with disk persistence in a fresh directory, started for the run, unless --storage is given) and the learner's,
/// each beside a bare write or read of the same bytes to the same store in the same run.
/// </summary>
public static class BenchTelemetryCommand
{
    private const string Usage = "usage: sandstorm bench telemetry [--events N] [--storage CONNECTION_STRING]";

    public static async Task<int> RunAsync(string[] args)
    {
        var events = 1_000_000;
        string? storage = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--events" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var n) && n > 0: events = n; i++; break;
                case "--storage" when i + 1 < args.Length: storage = args[++i]; break;
                default:
                    await Console.Error.WriteLineAsync($"unknown or incomplete argument '{args[i]}'\n{Usage}");
                    return 2;
            }
        }

        var location = Path.Combine(Path.GetTempPath(), "sandstorm-bench-telemetry-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Process? azurite = null;
        string connection;
        if (storage is null)
        {
            (azurite, connection) = AzuriteProcess.Start(location, inMemory: false);
        }
        else
        {
            connection = storage;
        }

        try
        {
            var blobs = new BlobServiceClient(connection);
            var suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
            var container = blobs.GetBlobContainerClient("telemetry-bench-" + suffix);
            await container.CreateIfNotExistsAsync();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"telemetry benchmark: {events} events into {(storage is null ? "Azurite with disk persistence (fresh directory, started for this run)" : "the given storage account")}; {Environment.ProcessorCount} cores"));

            // 1. Ingest: publish every event, wait until all are durable.
            var options = new TelemetryOptions { QueueCapacity = events + 1 };
            var log = new AppendBlobTelemetryLog(container, "bench-ingest", TimeProvider.System);
            var ingestor = new TelemetryIngestor(log, options, NullLogger<TelemetryIngestor>.Instance);
            var batches = new List<byte[]>();
            ingestor.OnBatchWritten = b => batches.Add(b.ToArray());
            var sample = Events(events);
            await ingestor.StartAsync(CancellationToken.None);
            var clock = Stopwatch.StartNew();
            foreach (var e in sample)
            {
                ingestor.Publish(e);
            }

            await ingestor.FlushAsync(CancellationToken.None);
            var ingestSeconds = clock.Elapsed.TotalSeconds;
            await ingestor.StopAsync(CancellationToken.None);
            var bytes = batches.Sum(b => (long)b.Length);
            Row("ingest (publish → batched appends, durable)", events, bytes, ingestSeconds, $"{batches.Count} appends of ~{events / Math.Max(1, batches.Count)} events, gzip ({ingestor.BytesWritten / (double)events:0} bytes/event stored); {ingestor.Dropped} dropped — goal ≥ 100,000 events/s {Mark(events / ingestSeconds >= 100_000)}");

            // 2. Bare write of the same bytes, batch by batch, to a fresh append blob of the same store.
            var bare = container.GetAppendBlobClient("bare/write.jsonl.gz");
            await bare.CreateIfNotExistsAsync();
            clock.Restart();
            foreach (var b in batches)
            {
                using var stream = new MemoryStream(b, writable: false);
                await bare.AppendBlockAsync(stream);
            }

            var bareSeconds = clock.Elapsed.TotalSeconds;
            Row("bare append of the same bytes", events, bytes, bareSeconds, $"ingest takes {ingestSeconds / bareSeconds:0.00}× the bare write");

            // 3. Learn: tail the log from the start, parse, hand every run outcome to the router.
            var router = new LightGbmRouter(new RoutingModelHolder(new InMemoryModelStore()), new RoutingOptions(), new SeededExplorationRandom(1));
            var feed = new TelemetryLearnerFeed(new TelemetryTail(container, ownWriterId: null, TimeProvider.System), router, options, TimeProvider.System, NullLogger<TelemetryLearnerFeed>.Instance);
            clock.Restart();
            var learnt = 0;
            int n;
            while ((n = await feed.PollOnceAsync(CancellationToken.None)) > 0 || learnt == 0)
            {
                learnt += n;
                if (n == 0)
                {
                    break;
                }
            }

            var learnSeconds = clock.Elapsed.TotalSeconds;
            var outcomes = sample.Count(e => e.Kind == TelemetryKind.RunOutcome);
            Row("learn (tail read → parse → router.Observe)", learnt, bytes, learnSeconds, $"{learnt} of {outcomes} run outcomes learnt — goal ≥ 10,000 executions/s {Mark(learnt / learnSeconds >= 10_000 && learnt == outcomes)}");

            // 4. Bare read of the same bytes from the same store.
            clock.Restart();
            var read = (await container.GetBlobClient("bare/write.jsonl.gz").DownloadContentAsync()).Value.Content.ToMemory().Length;
            var readSeconds = clock.Elapsed.TotalSeconds;
            Row("bare read of the same bytes", events, read, readSeconds, $"learning takes {learnSeconds / readSeconds:0.00}× the bare read (same bytes; the reader also decompresses and parses)");

            // 5. The learner alone, in memory (what parsing and storage cost on top).
            var observations = sample.Where(e => e.Kind == TelemetryKind.RunOutcome).Select(RunOutcomes.ToObservation).ToList();
            clock.Restart();
            foreach (var o in observations)
            {
                router.Observe(o);
            }

            Row("router.Observe alone (in memory)", observations.Count, 0, clock.Elapsed.TotalSeconds, "");
            return 0;
        }
        finally
        {
            if (azurite is not null)
            {
                AzuriteProcess.Stop(azurite);
                try
                {
                    Directory.Delete(location, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    private static void Row(string what, long count, long bytes, double seconds, string note) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what,-46} {count,9} in {seconds,6:0.00} s = {count / seconds,10:0} /s{(bytes > 0 ? $", {bytes / seconds / 1e6,6:0.0} MB/s" : "")}  {note}"));

    private static string Mark(bool ok) => ok ? "OK" : "MISSED";

    /// <summary>A realistic mix: 90 % run outcomes (with the predictions they were placed on), 5 % provider health, 5 % edge samples.</summary>
    private static List<TelemetryEvent> Events(int count)
    {
        var rng = new Random(3);
        var start = DateTimeOffset.UtcNow;
        string[] providers = ["e2b", "modal", "daytona", "edge"];
        string[] regions = ["us-east", "eu-west", "us-west"];
        var list = new List<TelemetryEvent>(count);
        for (var i = 0; i < count; i++)
        {
            var provider = providers[i % providers.Length];
            var region = regions[(i / 4) % regions.Length];
            var time = start.AddTicks(i * 10);
            var kind = (i % 20) switch { 0 => TelemetryKind.ProviderHealth, 1 => TelemetryKind.EdgeSample, _ => TelemetryKind.RunOutcome };
            list.Add(kind switch
            {
                TelemetryKind.ProviderHealth => new TelemetryEvent { Kind = kind, Time = time, Origin = "bench", Provider = provider, Region = region, Name = "control-call-ms", Value = 50 + (rng.NextDouble() * 200), Ok = rng.NextDouble() > 0.01 },
                TelemetryKind.EdgeSample => new TelemetryEvent { Kind = kind, Time = time, Origin = "bench", AgentId = $"agent-{i % 50}", JobId = $"job-{i}", Name = "exec", Data = new Dictionary<string, string> { ["runtime"] = "runsc", ["pid"] = (1000 + (i % 30000)).ToString(CultureInfo.InvariantCulture) } },
                _ => Outcome(rng, i, time, provider, region),
            });
        }

        return list;
    }

    private static TelemetryEvent Outcome(Random rng, int i, DateTimeOffset time, string provider, string region)
    {
        var latency = 500 + (rng.NextDouble() * 20_000);
        var cost = latency / 1000 * 0.000016;
        return new TelemetryEvent
        {
            Kind = TelemetryKind.RunOutcome,
            Time = time,
            Origin = "bench",
            RunId = $"run-{i:x8}",
            Provider = provider,
            Runtime = provider == "edge" ? "runsc" : "vm",
            Region = region,
            Language = i % 3 == 0 ? Languages.JavaScript : Languages.Python,
            CodeLength = 200 + rng.Next(5000),
            Requirements = rng.Next(4),
            Files = rng.Next(3),
            Cpu = 1,
            MemoryMiB = 512,
            TimeoutMs = 30_000,
            IsolationLevel = IsolationLevel.Standard,
            Strategy = i % 2 == 0 ? RoutingStrategy.OptimizeCost : RoutingStrategy.OptimizeLatency,
            PreferredRegion = i % 4 == 0 ? "eu-west" : null,
            VcpuSecond = 0.000014,
            GibSecond = 0.0000045,
            GranularitySeconds = 1,
            CostUsd = cost,
            LatencyMs = latency,
            Ok = rng.NextDouble() > 0.02,
            PredictedCostUsd = cost * (0.8 + (rng.NextDouble() * 0.4)),
            PredictedLatencyMs = latency * (0.8 + (rng.NextDouble() * 0.4)),
        };
    }
}
