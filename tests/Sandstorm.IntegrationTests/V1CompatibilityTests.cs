using System.Net;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Sandstorm.Storage;
using static Sandstorm.IntegrationTests.RunsApiTests;

namespace Sandstorm.IntegrationTests;

/// <summary>
/// The v1 TypeScript SDK and the launch post's examples against the real local host, with the JSON exactly as the SDK
/// sends it (<c>POST /v1/sandboxes/run</c> with <c>{spec, constraints}</c>, <c>GET /v1/usage?start=&amp;end=</c>, the
/// snapshot calls), and every route the API does not have.
/// </summary>
[Collection(LocalHostCollection.Name)]
public sealed class V1CompatibilityTests(LocalHostFixture fixture)
{
    private LocalHostProcess Host => fixture.Host;

    private string Storage => fixture.Azurite.ConnectionString;

    [Theory]
    // run({code}) as the issue saw it sent (isolationLevel standard), and as the SDK's code builds it (language defaulted, nothing else).
    [InlineData("""{"spec":{"code":"print(6*7)","language":"python","isolationLevel":"standard"}}""")]
    [InlineData("""{"spec":{"code":"print(6*7)","language":"python"}}""")]
    public async Task SandboxesRun_V1SdkDefaultCall_RunsInASandboxWithoutAnAgent_AndIsTheCallersOnly(string body)
    {
        var (_, key) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        using var http = Host.Client(key);

        using var response = await http.PostAsync("v1/sandboxes/run", Json(body));

        var result = await Ok(response);
        Assert.Equal("42\n", result.GetProperty("stdout").GetString());
        Assert.Equal(0, result.GetProperty("exitCode").GetInt32());
        Assert.Equal("local", result.GetProperty("provider").GetString());
        // A standard sandbox; which of them is the router's choice (it learns which is faster on this machine).
        Assert.Contains(result.GetProperty("runtime").GetString(), new[] { "bwrap", "runc", "podman" });
        var (_, otherKey) = await Tenants.CreateAsync(Storage);
        using var other = Host.Client(otherKey);
        await AssertProblem(await other.GetAsync($"v1/runs/{result.GetProperty("id").GetString()}"), HttpStatusCode.NotFound, "not-found");
    }

    [Theory]
    [InlineData("""{"spec":{"code":"x","language":"cobol"}}""", "language")]
    [InlineData("""{"spec":{"code":"x","language":"python","constraints":{"maxCost":1}},"constraints":{"maxCost":1}}""", "spec.constraints")]
    [InlineData("""{"spec":{"code":"x","language":"python","cpu":1},"constraints":{"cpu":2}}""", "constraints.cpu")]
    [InlineData("""{"spec":{"code":"x","language":"python","timeout":5000},"constraints":{"timeout":6000}}""", "constraints.timeout")]
    [InlineData("""{"spec":{"code":"x","language":"python"},"constraints":{"memory":1}}""", "constraints.memory")]
    [InlineData("""{"spec":{"code":"your_ai_code.py","language":"python","files":{"other.py":"x"}}}""", "code")]
    [InlineData("""{"spec":{"code":"main.ts","language":"python","files":{"main.ts":"x"}}}""", "language")]
    [InlineData("""{"spec":{"code":"print(1)","language":"python","requirements":["--index-url=http://elsewhere"]}}""", "requirements")]
    public async Task SandboxesRun_BadV1Input_Is400NamingTheFieldAndPersistsNothing(string body, string field)
    {
        var (tenant, key) = await Tenants.CreateAsync(Storage);
        using var http = Host.Client(key);

        var problem = await AssertProblem(await http.PostAsync("v1/sandboxes/run", Json(body)), HttpStatusCode.BadRequest, "validation-failed");

        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"the problem names '{field}': {problem}");
        Assert.Equal(0, await Tenants.CountAsync(Storage, "runs", tenant));
    }

    [Fact]
    public async Task SubmitRun_NoLanguageAndCodeThatNamesNoFile_Is400NamingLanguage()
    {
        using var http = Host.Client();

        var problem = await AssertProblem(await http.PostAsync("v1/runs", Json("""{"code":"print(1)"}""")), HttpStatusCode.BadRequest, "validation-failed");

        Assert.Contains("required", problem.GetProperty("errors").GetProperty("language")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SandboxesRun_ShellLanguage_RunsBash()
    {
        using var http = Host.Client();

        var result = await Ok(await http.PostAsync("v1/sandboxes/run", Json("""{"spec":{"code":"echo \"$BASH_VERSION\" | cut -d. -f1 | grep -q . && echo bash","language":"shell"}}""")));

        Assert.Equal("bash\n", result.GetProperty("stdout").GetString());
    }

    [Theory]
    [InlineData("none", null, "process")]
    [InlineData("standard", "bwrap", "bwrap")]
    [InlineData("standard", "runc", "runc")]
    [InlineData("standard", "podman", "podman")]
    [InlineData("strong", null, "gvisor")]
    public async Task SubmitRun_TypeScript_TranspilesAndRunsOfflineInEveryRuntime(string isolation, string? runtime, string expected)
    {
        using var http = Host.Client();
        var body = JsonSerializer.Serialize(new
        {
            code = "import { add } from './lib/math';\ninterface P { x: number }\nconst p: P = { x: 41 };\nawait new Promise((r) => setTimeout(r, 1));\nconsole.log(`${add(p.x, 1)} ${require.main === module}`);",
            language = "typescript",
            files = new Dictionary<string, string> { ["lib/math.ts"] = "export const add = (a: number, b: number): number => a + b;\n" },
            isolationLevel = isolation,
            runtimePreference = runtime,
            timeout = 60_000,
        });

        var run = await Body(await http.PostAsync("v1/runs?wait=60", Json(body)));

        Assert.True(run.GetProperty("status").GetString() == "succeeded", run.ToString());
        Assert.Equal(expected, run.GetProperty("runtime").GetString());
        Assert.Equal("42 true\n", run.GetProperty("stdout").GetString());
    }

    [Fact]
    public async Task SubmitRun_TypeScriptSyntaxError_FailsWithTheCompilersPosition()
    {
        using var http = Host.Client();

        var run = await Body(await http.PostAsync("v1/runs?wait=60", Json("""{"code":"const x: number = ;","language":"typescript"}""")));

        Assert.Equal(1, run.GetProperty("exitCode").GetInt32());
        Assert.Contains("main.ts(1,19): error TS1109", run.GetProperty("stderr").GetString(), StringComparison.Ordinal);
        Assert.Equal("", run.GetProperty("stdout").GetString());
    }

    [Fact]
    public async Task SandboxesRun_ConstraintsResources_AreHonoured()
    {
        var (tenant, key) = await Tenants.CreateAsync(Storage);
        using var http = Host.Client(key);

        var result = await Ok(await http.PostAsync(
            "v1/sandboxes/run",
            Json("""{"spec":{"code":"print('ok')","language":"python"},"constraints":{"cpu":0.5,"memory":128,"timeout":20000,"maxCost":0.05}}""")));

        var entry = await LedgerAsync(tenant, result.GetProperty("id").GetString()!);
        Assert.Equal((0.5, 128, 20_000), (entry.Cpu, entry.MemoryMiB, entry.TimeoutMs));
    }

    [Fact]
    public async Task SandboxesRun_ConstraintsTimeout_StopsTheRun()
    {
        using var http = Host.Client();

        var result = await Ok(await http.PostAsync(
            "v1/sandboxes/run",
            Json("""{"spec":{"code":"import time\nprint('started', flush=True)\ntime.sleep(30)\nprint('never')","language":"python"},"constraints":{"timeout":2000}}""")));

        Assert.Equal("timed_out", result.GetProperty("status").GetString());
        Assert.DoesNotContain("never", result.GetProperty("stdout").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"isolationLevel\":\"standard\"", "strong", "gvisor")]
    // An alias never lowers what the request asked for: strong stays strong.
    [InlineData("\"isolationLevel\":\"strong\"", "standard", "gvisor")]
    [InlineData("\"isolationLevel\":\"strong\"", "none", "gvisor")]
    public async Task SandboxesRun_ConstraintsIsolation_TheStrongerApplies(string level, string alias, string runtime)
    {
        using var http = Host.Client();
        var body = $$$"""{"spec":{"code":"print('isolated')","language":"python",{{{level}}}},"constraints":{"isolation":"{{{alias}}}"}}""";

        var result = await Ok(await http.PostAsync("v1/sandboxes/run", Json(body)));

        Assert.Equal(runtime, result.GetProperty("runtime").GetString());
    }

    [Fact]
    public async Task SandboxesRun_LaunchPostExampleWithMaximumIsolation_IsRefusedHereInsteadOfRunningWeaker()
    {
        var (tenant, key) = await Tenants.CreateAsync(Storage);
        using var http = Host.Client(key);
        var body = """{"spec":{"code":"your_ai_code.py","language":"python","files":{"your_ai_code.py":"print('hi')"},"strategy":"optimize_cost","securityTier":"shield"},"constraints":{"maxCost":0.05,"isolation":"maximum"}}""";

        var result = await Ok(await http.PostAsync("v1/sandboxes/run", Json(body)));

        // This machine has no microVM runtime and no cloud is configured: the run is refused, never placed below maximum.
        Assert.Equal("failed", result.GetProperty("status").GetString());
        Assert.Equal("isolation-unavailable", result.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("maximum", result.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("", result.GetProperty("stdout").GetString());
        var ledger = new LedgerStore(new TableProvider(new TableServiceClient(Storage), Options.Create(new StorageOptions())));
        Assert.True(await ledger.GetAsync(tenant, result.GetProperty("id").GetString()!, CancellationToken.None) is null or { Total: 0 }, "a refused run is never charged");
    }

    [Fact]
    public async Task SandboxesRun_CodeNamesAFile_RunsThatFileByItsNameWithTheLanguageOfItsExtension()
    {
        using var http = Host.Client();
        // The launch post's shape, through the v1 SDK (which always sends a language), and without a language (v2).
        var v1 = """{"spec":{"code":"your_ai_code.py","language":"python","files":{"your_ai_code.py":"import helper, os\nprint(helper.x, os.path.basename(__file__))","helper.py":"x = 42"}},"constraints":{"maxCost":0.05,"isolation":"strong"}}""";
        var v2 = """{"code":"run.sh","files":{"run.sh":"echo \"$0\" from bash $BASH_VERSINFO"},"constraints":{"maxCost":0.05}}""";

        var first = await Ok(await http.PostAsync("v1/sandboxes/run", Json(v1)));
        var second = await Body(await http.PostAsync("v1/runs?wait=60", Json(v2)));

        Assert.True(first.GetProperty("stdout").GetString() == "42 your_ai_code.py\n", first.ToString());
        Assert.Equal("gvisor", first.GetProperty("runtime").GetString());
        Assert.Matches(@"^/scratch/run\.sh from bash \d+\n$", second.GetProperty("stdout").GetString());
    }

    [Theory]
    [InlineData("""{"spec":{"code":"print(1)","language":"python","gpu":true}}""", "gpu")]
    [InlineData("""{"spec":{"code":"print(1)","language":"python"},"constraints":{"gpu":true}}""", "gpu")]
    [InlineData("""{"spec":{"code":"print(1)","language":"python"},"constraints":{"requireGpu":true}}""", "gpu")]
    [InlineData("""{"spec":{"code":"import numpy","language":"python","requirements":["numpy"]}}""", "requirements")]
    [InlineData("""{"spec":{"code":"import numpy","language":"python","files":{"requirements.txt":"numpy\n"}}}""", "requirements")]
    public async Task SandboxesRun_GpuOrPackagesWithNoProviderForThem_Is422NamingTheFieldAndPersistsNothing(string body, string field)
    {
        var (tenant, key) = await Tenants.CreateAsync(Storage);
        using var http = Host.Client(key);

        var problem = await AssertProblem(await http.PostAsync("v1/sandboxes/run", Json(body)), HttpStatusCode.UnprocessableEntity, "not-supported");

        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"the problem names '{field}': {problem}");
        Assert.Equal(0, await Tenants.CountAsync(Storage, "runs", tenant));
    }

    [Fact]
    public async Task Usage_V1StartEnd_AnswersTheV1FieldsBesideTheV2Ones_ForTheCallerOnly()
    {
        var (tenant, key) = await Tenants.CreateAsync(Storage);
        using var http = Host.Client(key);
        var costs = new List<decimal>();
        foreach (var code in new[] { "print(1)", "print(2)" })
        {
            costs.Add((await Ok(await http.PostAsync("v1/sandboxes/run", Json($$$"""{"spec":{"code":"{{{code}}}","language":"python"}}""")))).GetProperty("cost").GetDecimal());
        }

        // What getUsage({start, end}) sends: Date.toISOString() of each end.
        var start = DateTimeOffset.UtcNow.AddHours(-1).ToString("yyyy-MM-ddTHH:mm:ss.fffZ");
        var end = DateTimeOffset.UtcNow.AddHours(1).ToString("yyyy-MM-ddTHH:mm:ss.fffZ");
        var usage = await Ok(await http.GetAsync($"v1/usage?start={start}&end={end}"));

        Assert.Equal(2, usage.GetProperty("totalRuns").GetInt32());
        Assert.Equal(costs.Sum(), usage.GetProperty("totalCost").GetDecimal());
        Assert.True(usage.GetProperty("avgLatency").GetDouble() > 0);
        Assert.Equal(2, usage.GetProperty("providerBreakdown").GetProperty("local").GetInt32());
        Assert.Equal(2, usage.GetProperty("runs").GetInt32());
        Assert.Equal(costs.Sum(), usage.GetProperty("total").GetDecimal());
        var totals = usage.GetProperty("totals");
        Assert.Equal(costs.Sum(), totals.GetProperty("total").GetDecimal());
        foreach (var name in new[] { "autopilotFees", "shieldFees", "baselineCost", "savings", "carbonGrams", "providerCost" })
        {
            Assert.True(totals.TryGetProperty(name, out _), $"totals has {name}: {totals}");
        }

        var local = Assert.Single(usage.GetProperty("providers").EnumerateArray());
        Assert.Equal(0m, local.GetProperty("autopilotFees").GetDecimal());
        Assert.Equal(tenant, usage.GetProperty("tenant").GetString());

        // A period before the runs, and another tenant's view of the same period, hold none of them.
        var before = await Ok(await http.GetAsync($"v1/usage?start={DateTimeOffset.UtcNow.AddDays(-3):O}&end={DateTimeOffset.UtcNow.AddDays(-2):O}".Replace("+", "%2B", StringComparison.Ordinal)));
        Assert.Equal(0, before.GetProperty("totalRuns").GetInt32());
        var (_, otherKey) = await Tenants.CreateAsync(Storage);
        using var other = Host.Client(otherKey);
        var theirs = await Ok(await other.GetAsync($"v1/usage?start={start}&end={end}"));
        Assert.Equal(0, theirs.GetProperty("totalRuns").GetInt32());
        Assert.Empty(theirs.GetProperty("providerBreakdown").EnumerateObject());
    }

    [Theory]
    [InlineData("start=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z", "start")]
    [InlineData("from=2026-01-01T00:00:00Z&end=2026-02-01T00:00:00Z", "end")]
    [InlineData("start=2026-02-01T00:00:00Z&end=2026-01-01T00:00:00Z", "start")]
    [InlineData("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from")]
    [InlineData("start=yesterday", "start")]
    public async Task Usage_BadPeriod_Is400NamingTheField(string query, string field)
    {
        using var http = Host.Client();

        var problem = await AssertProblem(await http.GetAsync($"v1/usage?{query}"), HttpStatusCode.BadRequest, "validation-failed");

        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"the problem names '{field}': {problem}");
    }

    [Theory]
    [InlineData("GET", "v1/snapshots")]
    [InlineData("GET", "v1/snapshots?sandboxId=sb_1&provider=e2b")]
    [InlineData("POST", "v1/sandboxes/sb_1/snapshot")]
    [InlineData("POST", "v1/snapshots/snap_1/restore")]
    public async Task Snapshots_V1Calls_Are501NotSupported_AndNeedACredential(string method, string path)
    {
        using var http = Host.Client();
        using var anonymous = new HttpClient { BaseAddress = new Uri(Host.Url) };

        var problem = await AssertProblem(await http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path)), HttpStatusCode.NotImplemented, "not-supported");

        Assert.Contains("snapshot", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        await AssertProblem(await anonymous.SendAsync(new HttpRequestMessage(new HttpMethod(method), path)), HttpStatusCode.Unauthorized, "unauthorized");
    }

    [Theory]
    [InlineData("GET", "nope")]
    [InlineData("GET", "")]
    [InlineData("POST", "v1/nope")]
    [InlineData("DELETE", "v1/runs/run_1/provenance/extra")]
    [InlineData("PUT", "favicon.ico")]
    public async Task UnknownRoute_AnyMethod_Is404Problem(string method, string path)
    {
        using var http = Host.Client();

        var problem = await AssertProblem(await http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path)), HttpStatusCode.NotFound, "not-found");

        Assert.Contains(method, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("PUT", "v1/runs", "GET, POST")]
    [InlineData("PUT", "v1/usage", "GET")]
    [InlineData("POST", "v1/runs/run_1", "DELETE, GET")]
    [InlineData("DELETE", "v1/snapshots", "GET")]
    public async Task KnownRoute_WrongMethod_Is405ProblemWithAllow(string method, string path, string allow)
    {
        using var http = Host.Client();

        using var response = await http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        await AssertProblem(response, HttpStatusCode.MethodNotAllowed, "method-not-allowed");
        Assert.Equal(allow, string.Join(", ", response.Content.Headers.Allow.Order(StringComparer.Ordinal)));
    }

    private async Task<JsonElement> Ok(HttpResponseMessage response)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}\nhost log:\n{Host.Log}");
            return JsonDocument.Parse(text).RootElement.Clone();
        }
    }

    private async Task<LedgerEntry> LedgerAsync(string tenant, string runId) =>
        await new LedgerStore(new TableProvider(new TableServiceClient(Storage), Options.Create(new StorageOptions()))).GetAsync(tenant, runId, CancellationToken.None)
            ?? throw new InvalidOperationException($"run {runId} settled without a ledger row");
}
