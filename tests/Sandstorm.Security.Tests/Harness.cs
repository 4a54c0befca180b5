using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Logging.Abstractions;
using Sandstorm.Core.Contracts;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;
using Sandstorm.Testing;

namespace Sandstorm.Security.Tests;

[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<LocalAzurite>
{
    public const string Name = "azurite";
}

/// <summary>A signer, log and provenance service over real Azurite, isolated by a table name of its own.</summary>
public sealed class Harness : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sandstorm-sec-" + Guid.NewGuid().ToString("N"));

    public Harness(LocalAzurite azurite)
    {
        Tables = new TableServiceClient(azurite.ConnectionString);
        Blobs = new BlobServiceClient(azurite.ConnectionString);
        TableName = "provlog" + Guid.NewGuid().ToString("N")[..12];
        Options = new TransparencyLogOptions { TableName = TableName, LogName = "test", HeadWaitTimeout = TimeSpan.FromSeconds(20) };
        Signer = new LocalSigner(Path.Combine(_dir, "key.pem"));
        Log = NewLog();
        Service = NewService(Log);
    }

    public TableServiceClient Tables { get; }

    public BlobServiceClient Blobs { get; }

    public string TableName { get; }

    public TransparencyLogOptions Options { get; }

    public LocalSigner Signer { get; }

    public TableTransparencyLog Log { get; }

    public ProvenanceService Service { get; }

    public string Tenant { get; } = "t" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>A second log over the same table: another process, with its own caches.</summary>
    public TableTransparencyLog NewLog() =>
        new(Tables, Signer, TimeProvider.System, NullLogger<TableTransparencyLog>.Instance, Options);

    public ProvenanceService NewService(ITransparencyLog log) =>
        new(Blobs, Signer, log, NullLogger<ProvenanceService>.Instance);

    public ProvenanceInput Input(string runId, string stdout = "hello\n") => new()
    {
        RunId = runId,
        TenantId = Tenant,
        InstanceId = runId,
        Intent = RunIntent.Of(new RunRequest
        {
            Code = "print('hello')",
            Language = Languages.Python,
            Files = new Dictionary<string, string> { ["data/in.txt"] = "input" },
            Environment = new Dictionary<string, string> { ["TOKEN"] = "secret-value" },
        }),
        Stdout = stdout,
        Stderr = "",
        Route = new RouteDecision(new RouteCandidate("local", "bwrap", "local"), [new RouteCandidate("local", "bwrap", "local")], "only candidate"),
        Provider = "local",
        Runtime = "bwrap",
        Region = "local",
        IsolationLevel = IsolationLevel.Standard,
        StartedAt = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero),
        CompletedAt = new DateTimeOffset(2025, 1, 2, 3, 4, 6, TimeSpan.Zero),
        Cost = new CostBreakdown(0.0001m, 0.00002m, 0.00012m),
        ExitCode = 0,
        SecurityVerdict = "clean",
    };

    public void Dispose()
    {
        Signer.Dispose();
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }
}
