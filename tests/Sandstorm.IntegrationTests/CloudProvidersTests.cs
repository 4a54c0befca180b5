using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Sandstorm.Providers.StandIns;
using Sandstorm.Storage;
using Sandstorm.Testing;

namespace Sandstorm.IntegrationTests;

/// <summary>
/// The real local host configured with every sandbox cloud, each pointed at its stand-in (the clouds cannot be reached
/// from here): runs are routed to a cloud, execute through the cloud's API shape (the stand-ins really run the code),
/// fail over when the first candidate is down, release their sandboxes and settle the provider's billing rule in the ledger.
/// </summary>
[Collection(CloudHostCollection.Name)]
public sealed class CloudProvidersTests(CloudHostFixture fixture)
{
    // Real output: a digest the stand-in can only print by running the code.
    private const string Code = "import hashlib\nprint(hashlib.sha256(b'sandstorm').hexdigest()[:16])";
    private static readonly string Expected = Convert.ToHexStringLower(SHA256.HashData("sandstorm"u8))[..16] + "\n";

    [Theory]
    [InlineData("e2b", "maximum", "firecracker")]
    [InlineData("daytona", "standard", "container")]
    [InlineData("modal", "strong", "gvisor")]
    [InlineData("aca", "maximum", "hyperv")]
    public async Task Run_RoutedToCloud_ExecutesThroughItsApiAndSettlesItsBillingRule(string provider, string isolation, string runtime)
    {
        var (tenant, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);

        var run = await SubmitAsync(key, isolation, [provider]);

        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal(provider, run.GetProperty("provider").GetString());
        Assert.Equal(runtime, run.GetProperty("runtime").GetString());
        Assert.Equal(Expected, run.GetProperty("stdout").GetString());
        var entry = await LedgerAsync(tenant, run);
        Assert.Equal(provider, entry.Provider);
        Assert.Equal(run.GetProperty("duration").GetInt64(), entry.DurationMs);
        Assert.True(entry.ProviderCost > 0, "a cloud run costs something");
        Assert.Equal(BillingRule(provider, entry.DurationMs), entry.ProviderCost);
        Assert.Equal(entry.ProviderCost + AutopilotFee(entry), entry.Total);
        Assert.Equal(entry.Total, run.GetProperty("cost").GetProperty("total").GetDecimal());
        // The baseline the fee was charged against is the one the route carried.
        Assert.Equal((decimal)run.GetProperty("route").GetProperty("baseline").GetProperty("predictedCostUsd").GetDouble(), entry.BaselineCost);
        AssertReleased(provider, run, entry);
    }

    [Theory]
    [InlineData(FaultKind.Status, 503)]
    [InlineData(FaultKind.Status, 429)]
    [InlineData(FaultKind.Reset, 0)]
    public async Task Run_FirstCandidateDown_FailsOverToTheNextAndSettlesThere(FaultKind kind, int status)
    {
        var (tenant, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        // An E2B provision starts by looking for the run's sandbox (a retried one may exist): that is the call that fails.
        var lookupsBefore = fixture.E2B.Faults.Calls("list");
        fixture.E2B.Faults.Outage = new Fault(kind, status);
        JsonElement run;
        try
        {
            // Both give hardware isolation; E2B is far cheaper for a short run, so it is tried first.
            run = await SubmitAsync(key, "maximum", ["e2b", "aca"], strategy: "optimize_cost");
        }
        finally
        {
            fixture.E2B.Faults.Outage = null;
        }

        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal("e2b", run.GetProperty("route").GetProperty("candidates")[0].GetProperty("provider").GetString());
        Assert.Equal("aca", run.GetProperty("provider").GetString());
        Assert.Equal(Expected, run.GetProperty("stdout").GetString());
        Assert.True(fixture.E2B.Faults.Calls("list") > lookupsBefore, "the run never tried e2b");
        var entry = await LedgerAsync(tenant, run);
        Assert.Equal("aca", entry.Provider);
        Assert.Equal(BillingRule("aca", entry.DurationMs), entry.ProviderCost);
        Assert.Equal(entry.ProviderCost + AutopilotFee(entry), entry.Total);
        // Nothing leaked on the provider that was down, and the one that ran settled its usage.
        Assert.Equal(0, fixture.E2B.Live);
        AssertReleased("aca", run, entry);
    }

    /// <summary>
    /// A fault at one step of a cloud, through the whole pipeline: the run settles once, with the outcome the fault allows,
    /// the code ran at most once, and the cloud holds nothing of the run afterwards.
    /// </summary>
    [Theory]
    [InlineData("e2b", "maximum", CloudStep.Create, FaultKind.DropAfter, "succeeded", null)]
    [InlineData("e2b", "maximum", CloudStep.Start, FaultKind.DropAfter, "succeeded", null)]
    [InlineData("daytona", "standard", CloudStep.Create, FaultKind.DropAfter, "succeeded", null)]
    [InlineData("daytona", "standard", CloudStep.Start, FaultKind.DropAfter, "failed", "execution-interrupted")]
    [InlineData("modal", "strong", CloudStep.Stream, FaultKind.CutStream, "succeeded", null)]
    [InlineData("modal", "strong", CloudStep.Start, FaultKind.DropAfter, "failed", "execution-interrupted")]
    [InlineData("aca", "maximum", CloudStep.Start, FaultKind.DropAfter, "failed", "execution-interrupted")]
    public async Task Run_FaultAtAStep_SettlesOnce_RunsTheCodeAtMostOnce_AndLeavesNothing(
        string provider, string isolation, CloudStep step, FaultKind kind, string status, string? error)
    {
        var (tenant, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var cloud = fixture.Cloud(provider);
        cloud.Faults.At(step, kind);
        // The code finishes only once E2B's stream has been reattached (at once for the other clouds), so the fault
        // strikes while it runs, whatever the machine's load.
        using var gate = new Gate();
        var reattachedBefore = fixture.E2B.Reattached;
        gate.OpenWhen(() => provider != "e2b" || step != CloudStep.Start || fixture.E2B.Reattached > reattachedBefore);
        var gated = $"import os, time, hashlib\ndeadline = time.time() + 60\nwhile not os.path.exists({JsonSerializer.Serialize(gate.Path)}) and time.time() < deadline: time.sleep(0.02)\nprint(hashlib.sha256(b'sandstorm').hexdigest()[:16])";

        var run = await SubmitAsync(key, isolation, [provider], code: gated);

        var runId = run.GetProperty("id").GetString()!;
        Assert.Equal(status, run.GetProperty("status").GetString());
        Assert.Equal(provider, run.GetProperty("provider").GetString());
        if (error is null)
        {
            Assert.Equal(Expected, run.GetProperty("stdout").GetString());
        }
        else
        {
            Assert.Equal(error, run.GetProperty("error").GetProperty("code").GetString());
        }

        Assert.Equal(1, cloud.ExecutionsFor(runId));
        // ACA sessions have no delete; every other cloud holds nothing of the run.
        Assert.Equal(provider == "aca" ? 1 : 0, cloud.LiveFor(runId));
        // Settled once: one ledger row, billed for what ran.
        Assert.Equal(provider, (await LedgerAsync(tenant, run)).Provider);
    }

    /// <summary>
    /// The providers' published billing rules (docs/providers.md), written out again here rather than taken from the
    /// adapters, applied to the usage the run reports.
    /// </summary>
    private static decimal BillingRule(string provider, long durationMs)
    {
        const double cpu = 1, memoryGiB = 0.5;
        var seconds = durationMs / 1000.0;
        var usd = provider switch
        {
            // Per second, vCPU + GiB.
            "e2b" => Math.Ceiling(seconds) * ((cpu * 0.000014) + (memoryGiB * 0.0000045)),
            // Per second, whole vCPUs and whole GiB as allocated.
            "daytona" => Math.Ceiling(seconds) * ((Math.Ceiling(cpu) * 0.000014) + (Math.Ceiling(memoryGiB) * 0.0000045)),
            // Per second, physical cores (2 vCPU each, at least 0.125) + GiB.
            "modal" => Math.Ceiling(seconds) * ((Math.Max(cpu / 2, 0.125) * 0.00003942) + (memoryGiB * 0.00000672)),
            // Per session: the run plus the 300 s cooldown it stays allocated, at $0.03 a session-hour.
            "aca" => Math.Ceiling(seconds + 300) * 0.03 / 3600,
            _ => throw new ArgumentOutOfRangeException(nameof(provider)),
        };
        return Math.Round((decimal)usd, 8, MidpointRounding.AwayFromZero);
    }

    /// <summary>Autopilot's rule (docs/routing.md, "Billing"): 8% of the savings against the run's baseline, never negative.</summary>
    private static decimal AutopilotFee(LedgerEntry entry) =>
        entry.BaselineCost is { } baseline ? Math.Round(Math.Max(0m, baseline - entry.ProviderCost) * 0.08m, 8, MidpointRounding.AwayFromZero) : 0m;

    private void AssertReleased(string provider, JsonElement run, LedgerEntry entry)
    {
        var runId = run.GetProperty("id").GetString()!;
        switch (provider)
        {
            case "e2b":
                Assert.Equal(0, fixture.E2B.Live);
                break;
            case "daytona":
                Assert.Equal(0, fixture.Daytona.Live);
                break;
            case "modal":
                Assert.Equal(0, fixture.Modal.Live);
                break;
            case "aca":
                // A session has no delete: it ends after the pool's cooldown. What it billed is what the session reported.
                Assert.Equal(fixture.Aca.ReportedExecutionMs("sandstorm-" + runId), entry.DurationMs);
                Assert.Contains("https://dynamicsessions.io", fixture.Aca.TokenResources);
                break;
        }
    }

    private async Task<JsonElement> SubmitAsync(string key, string isolation, string[] providers, string strategy = "balanced", string code = Code)
    {
        using var http = fixture.Host.Client(key);
        var body = JsonSerializer.Serialize(new
        {
            code,
            language = "python",
            isolationLevel = isolation,
            strategy,
            cpu = 1,
            memory = 512,
            timeout = 30_000,
            constraints = new { preferredProviders = providers },
        });
        using var response = await http.PostAsync("v1/runs?wait=60", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Accepted, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        var location = response.Headers.Location!.OriginalString.TrimStart('/');
        return await Poll.UntilAsync(
            async () => await http.GetFromJsonAsync<JsonElement>(location),
            r => r.GetProperty("status").GetString() is not ("queued" or "running"),
            TimeSpan.FromSeconds(120),
            "the run to settle");
    }

    private async Task<LedgerEntry> LedgerAsync(string tenant, JsonElement run)
    {
        var ledger = new LedgerStore(new TableProvider(new TableServiceClient(fixture.Azurite.ConnectionString), Options.Create(new StorageOptions())));
        return await ledger.GetAsync(tenant, run.GetProperty("id").GetString()!, CancellationToken.None)
            ?? throw new InvalidOperationException("the run settled without a ledger row");
    }
}

/// <summary>One Azurite, the four stand-ins and one local host configured with all of them.</summary>
public sealed class CloudHostFixture : IAsyncLifetime
{
    public AzuriteFixture Azurite { get; } = new();

    public LocalHostProcess Host { get; private set; } = null!;

    public E2BStandIn E2B { get; private set; } = null!;

    public DaytonaStandIn Daytona { get; private set; } = null!;

    public ModalStandIn Modal { get; private set; } = null!;

    public AcaStandIn Aca { get; private set; } = null!;

    /// <summary>The stand-in of a cloud by provider id.</summary>
    public ICloudStandIn Cloud(string provider) => provider switch
    {
        "e2b" => E2B,
        "daytona" => Daytona,
        "modal" => Modal,
        "aca" => Aca,
        _ => throw new ArgumentOutOfRangeException(nameof(provider), provider, "no such stand-in"),
    };

    public async Task InitializeAsync()
    {
        E2B = await E2BStandIn.StartAsync();
        Daytona = await DaytonaStandIn.StartAsync();
        Modal = await ModalStandIn.StartAsync();
        Aca = await AcaStandIn.StartAsync();

        var environment = new Dictionary<string, string>
        {
            ["Sandstorm__Providers__E2B__BaseUrl"] = E2B.BaseUrl.ToString(),
            ["Sandstorm__Providers__E2B__SandboxUrl"] = E2B.BaseUrl.ToString(),
            ["Sandstorm__Providers__E2B__ApiKey"] = E2BStandIn.ApiKey,
            ["Sandstorm__Providers__Daytona__BaseUrl"] = Daytona.BaseUrl.ToString(),
            ["Sandstorm__Providers__Daytona__ApiKey"] = DaytonaStandIn.ApiKey,
            ["Sandstorm__Providers__Modal__BaseUrl"] = Modal.BaseUrl.ToString(),
            ["Sandstorm__Providers__Modal__TokenId"] = ModalStandIn.TokenId,
            ["Sandstorm__Providers__Modal__TokenSecret"] = ModalStandIn.TokenSecret,
            ["Sandstorm__Providers__Aca__PoolManagementEndpoint"] = Aca.PoolEndpoint.ToString(),
            // ACA's token comes through Azure.Identity's managed-identity path, from the stand-in's identity endpoint.
            ["IDENTITY_ENDPOINT"] = Aca.IdentityEndpoint.ToString(),
            ["IDENTITY_HEADER"] = AcaStandIn.IdentityHeader,
            // No exploration: the test asserts which candidate the router tries first.
            ["Routing__ExplorationRate"] = "0",
        };
        foreach (var name in new[] { "E2B", "Daytona", "Modal", "Aca" })
        {
            // The outage tests fail e2b on purpose: its breaker must not open and take it out of later routes.
            environment[$"Sandstorm__Providers__{name}__BreakerMinimumThroughput"] = "1000";
            environment[$"Sandstorm__Providers__{name}__RetryBaseDelay"] = "00:00:00.050";
        }

        Host = new LocalHostProcess(Azurite.ConnectionString, environment: environment);
        await Host.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        await E2B.DisposeAsync();
        await Daytona.DisposeAsync();
        await Modal.DisposeAsync();
        await Aca.DisposeAsync();
        Azurite.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class CloudHostCollection : ICollectionFixture<CloudHostFixture>
{
    public const string Name = "cloud host";
}
