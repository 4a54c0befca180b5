using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Logging.Abstractions;
using Sandstorm.Core.Contracts;
using Sandstorm.Storage;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Cli.Commands;

/// <summary>
/// <c>sandstorm bench log [--storage CONNSTR] [--appends N] [--records N] [--concurrency C] [--leaves N]</c>: transparency
/// log figures — appends/s and full provenance records/s against Azure Tables/Blobs (Azurite started on free ports
/// unless --storage is given), tree rebuild speed from storage, and proof size/time over an in-memory tree of 10^6 leaves.
/// </summary>
public static class BenchLogCommand
{
    /// <summary>Runs the benchmark with the arguments after <c>bench log</c>.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        var options = ParseArgs(args);
        if (options is null)
        {
            Console.Error.WriteLine("usage: sandstorm bench log [--storage CONNSTR] [--appends N] [--records N] [--concurrency C] [--leaves N]");
            return 2;
        }

        var (storage, appends, records, concurrency, leaves) = options.Value;
        var work = Path.Combine(Path.GetTempPath(), "sandstorm-bench-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));
        Directory.CreateDirectory(work);
        using var azurite = storage is null ? BenchAzurite.Start() : null;
        var connection = storage ?? azurite!.ConnectionString;
        Console.WriteLine($"storage: {(storage is null ? "Azurite (started for this run, in memory)" : "given connection string")}; concurrency {concurrency}; {Environment.ProcessorCount} cores");

        try
        {
            using var signer = new LocalSigner(Path.Combine(work, "key.pem"));
            var tables = new TableServiceClient(connection);
            var logOptions = new TransparencyLogOptions { TableName = "benchlog" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)), LogName = "bench" };
            var log = new TableTransparencyLog(tables, signer, TimeProvider.System, NullLogger<TableTransparencyLog>.Instance, logOptions);
            await log.GetSignedTreeHeadAsync(CancellationToken.None);

            // 1. Log appends alone (leaf = 1 KiB stand-in envelope), C at a time.
            var leaf = RandomNumberGenerator.GetBytes(1024);
            var clock = Stopwatch.StartNew();
            await Concurrently.ForEachAsync(appends, concurrency, i => log.AppendAsync(new LogAppend($"bench-{i}", "bench", leaf, $"bench/{i}", "k"), CancellationToken.None));
            var appendSeconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"log appends:        {appends} in {appendSeconds:0.00} s = {appends / appendSeconds:0} appends/s");

            // 2. Whole RecordAsync: statement, ES256 signature, create-only blob, append.
            var service = new ProvenanceService(new BlobServiceClient(connection), signer, log, NullLogger<ProvenanceService>.Instance);
            clock.Restart();
            await Concurrently.ForEachAsync(records, concurrency, i => service.RecordAsync(Input($"rec-{i}"), CancellationToken.None));
            var recordSeconds = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"provenance records: {records} in {recordSeconds:0.00} s = {records / recordSeconds:0} records/s (sign + blob + append)");

            // 3. A new process rebuilding its proof cache from the stored leaves.
            var fresh = new TableTransparencyLog(tables, signer, TimeProvider.System, NullLogger<TableTransparencyLog>.Instance, logOptions);
            clock.Restart();
            var head = await fresh.GetSignedTreeHeadAsync(CancellationToken.None);
            var rebuild = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"cache rebuild:      {head.TreeSize} leaves from Tables in {rebuild:0.00} s = {head.TreeSize / rebuild:0} leaves/s (10^6 leaves ≈ {1_000_000 / (head.TreeSize / rebuild):0} s)");
            clock.Restart();
            var storedProof = await fresh.GetInclusionProofAsync(head.TreeSize / 3, head.TreeSize, CancellationToken.None);
            Console.WriteLine($"stored-log proof:   {storedProof.Hashes.Count} hashes at size {head.TreeSize}, {clock.Elapsed.TotalMilliseconds:0.0} ms (incl. head read)");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }

        BenchInMemory(leaves);
        return 0;
    }

    // Proof cost at a size storage here cannot reach quickly: the same MerkleTree the log uses, filled in memory.
    private static void BenchInMemory(int leaves)
    {
        var tree = new MerkleTree();
        var clock = Stopwatch.StartNew();
        Span<byte> buffer = stackalloc byte[8];
        for (var i = 0; i < leaves; i++)
        {
            BitConverter.TryWriteBytes(buffer, (long)i);
            tree.AppendLeafHash(MerkleHash.Leaf(buffer));
        }

        Console.WriteLine($"in-memory tree:     {leaves} leaves built in {clock.Elapsed.TotalSeconds:0.00} s, ~{GC.GetTotalMemory(false) / (1024 * 1024)} MiB managed heap");
        var root = tree.Root(leaves);
        const int samples = 1000;
        var random = new Random(42);
        var indexes = Enumerable.Range(0, samples).Select(_ => (long)random.Next(leaves)).ToArray();
        var proofs = new IReadOnlyList<byte[]>[samples];
        clock.Restart();
        for (var i = 0; i < samples; i++)
        {
            proofs[i] = tree.InclusionProof(indexes[i], leaves);
        }

        var proveUs = clock.Elapsed.TotalMicroseconds / samples;
        clock.Restart();
        for (var i = 0; i < samples; i++)
        {
            if (!MerkleProofs.VerifyInclusion(tree.LeafHash(indexes[i]), indexes[i], leaves, proofs[i], root))
            {
                throw new InvalidOperationException("inclusion proof did not verify");
            }
        }

        var verifyUs = clock.Elapsed.TotalMicroseconds / samples;
        var hashes = proofs.Average(p => p.Count);
        Console.WriteLine($"inclusion proof:    {hashes:0.0} hashes = {hashes * 32:0} bytes at {leaves} leaves; prove {proveUs:0.0} µs, verify {verifyUs:0.0} µs (mean of {samples})");

        var from = leaves / 3 + 1;
        clock.Restart();
        var consistency = tree.ConsistencyProof(from, leaves);
        var consistencyUs = clock.Elapsed.TotalMicroseconds;
        clock.Restart();
        var ok = MerkleProofs.VerifyConsistency(from, leaves, tree.Root(from), root, consistency);
        Console.WriteLine($"consistency proof:  {from}->{leaves}: {consistency.Count} hashes = {consistency.Count * 32} bytes; prove {consistencyUs:0.0} µs, verify {clock.Elapsed.TotalMicroseconds:0.0} µs, ok={ok}");
    }

    private static ProvenanceInput Input(string runId) => new()
    {
        RunId = runId,
        TenantId = "bench",
        Intent = RunIntent.Of(new RunRequest { Code = "print('bench')", Language = Languages.Python }),
        Stdout = "bench\n",
        Provider = "local",
        Runtime = "process",
        StartedAt = DateTimeOffset.UnixEpoch,
        CompletedAt = DateTimeOffset.UnixEpoch.AddSeconds(1),
        Cost = CostBreakdown.Zero,
        SecurityVerdict = "clean",
    };

    private static (string? Storage, int Appends, int Records, int Concurrency, int Leaves)? ParseArgs(string[] args)
    {
        string? storage = null;
        int appends = 1000, records = 300, concurrency = 32, leaves = 1_000_000;
        for (var i = 0; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length)
            {
                return null;
            }

            var value = args[i + 1];
            var number = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : -1;
            switch (args[i])
            {
                case "--storage": storage = value; break;
                case "--appends" when number > 0: appends = number; break;
                case "--records" when number > 0: records = number; break;
                case "--concurrency" when number > 0: concurrency = number; break;
                case "--leaves" when number > 0: leaves = number; break;
                default: return null;
            }
        }

        return (storage, appends, records, concurrency, leaves);
    }

    // Starts Azurite from the repository's node_modules on free loopback ports, in memory; killed on dispose.
    /// <summary>A throwaway in-memory Azurite for the benchmark.</summary>
    private sealed class BenchAzurite : IDisposable
    {
        private readonly Process _process;

        private BenchAzurite(Process process, string connectionString)
        {
            _process = process;
            ConnectionString = connectionString;
        }

        public string ConnectionString { get; }

        public static BenchAzurite Start()
        {
            var (process, connectionString) = AzuriteProcess.Start(location: "", inMemory: true);
            return new BenchAzurite(process, connectionString);
        }

        public void Dispose() => AzuriteProcess.Stop(_process);
    }
}
