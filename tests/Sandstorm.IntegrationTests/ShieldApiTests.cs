using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Security.Compliance;
using Sandstorm.Testing;
using Xunit.Abstractions;
using static Sandstorm.IntegrationTests.RunsApiTests;

namespace Sandstorm.IntegrationTests;

/// <summary>Shield's API (docs/shield.md) over HTTP against the real local host: tenant rules, Falco alerts, findings, Shield runs and compliance reports.</summary>
[Collection(LocalHostCollection.Name)]
public sealed class ShieldApiTests(LocalHostFixture fixture, ITestOutputHelper output)
{
    private const string DownloadRule = """
        - list: download_tools
          items: [curl, wget]
        - rule: Download tool
          desc: a download tool started in a sandbox
          condition: spawned_process and proc.name in (download_tools)
          output: download tool %proc.name started (%proc.cmdline)
          priority: WARNING
          tags: [tenant]
        """;

    private string Storage => fixture.Azurite.ConnectionString;

    [Fact]
    public async Task PutRules_ValidFalcoRule_IsStoredAndReturnedToItsTenantOnly()
    {
        var (tenant, key) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        var (_, other) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        using var http = fixture.Host.Client(key);
        using var otherHttp = fixture.Host.Client(other);

        using var put = await http.PutAsync("v1/shield/rules?quarantineThreshold=error", Yaml(DownloadRule));
        var saved = await Body(put);
        Assert.True(put.StatusCode == HttpStatusCode.OK, saved.ToString());
        Assert.Equal(["Download tool"], saved.GetProperty("rules").EnumerateArray().Select(r => r.GetString()));

        var rules = await Body(await http.GetAsync("v1/shield/rules"));
        Assert.Equal(tenant, rules.GetProperty("tenant").GetString());
        Assert.Equal("error", rules.GetProperty("quarantineThreshold").GetString());
        Assert.Equal(DownloadRule, rules.GetProperty("yaml").GetString());
        Assert.Equal(["Download tool"], rules.GetProperty("rules").EnumerateArray().Select(r => r.GetString()));
        Assert.Contains(rules.GetProperty("defaultRules").EnumerateArray(), r => r.GetProperty("name").GetString() == "Read of credentials");

        var theirs = await Body(await otherHttp.GetAsync("v1/shield/rules"));
        Assert.Empty(theirs.GetProperty("rules").EnumerateArray());
        Assert.NotEqual(DownloadRule, theirs.GetProperty("yaml").ToString());
    }

    [Theory]
    [InlineData("- rule: Globbing\n  desc: d\n  condition: evt.type = openat and fd.name glob /etc/*\n  output: o\n  priority: INFO\n", "line 3:")]
    [InlineData("- rule: Coloured\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: INFO\n  colour: red\n", "line 6:")]
    [InlineData("- rule: Weakened\n  desc: d\n  condition: evt.type = openat\n  output: o\n  priority: INFO\n- rule: Reverse shell\n  enabled: false\n", "line 6:")]
    public async Task PutRules_UnsupportedConstructOrUnknownKey_Is400NamingItsLineAndKeepsNothing(string yaml, string line)
    {
        var (_, key) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        using var http = fixture.Host.Client(key);

        using var response = await http.PutAsync("v1/shield/rules", Yaml(yaml));

        var problem = await AssertProblem(response, HttpStatusCode.BadRequest, "validation-failed", "rules");
        Assert.Contains(problem.GetProperty("errors").GetProperty("rules").EnumerateArray(), e => e.GetString()!.StartsWith(line, StringComparison.Ordinal));
        var rules = await Body(await http.GetAsync("v1/shield/rules"));
        Assert.Empty(rules.GetProperty("rules").EnumerateArray());
    }

    [Fact]
    public async Task PutRules_UnknownThreshold_Is400NamingIt()
    {
        var (_, key) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        using var http = fixture.Host.Client(key);

        using var response = await http.PutAsync("v1/shield/rules?quarantineThreshold=loud", Yaml(DownloadRule));

        await AssertProblem(response, HttpStatusCode.BadRequest, "validation-failed", "quarantineThreshold");
    }

    [Fact]
    public async Task PostAlerts_FalcoAlert_IsStoredAsAFindingOfThatTenantOnly()
    {
        var (tenant, key) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        var (_, other) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        using var http = fixture.Host.Client(key);
        using var otherHttp = fixture.Host.Client(other);
        var uuid = Guid.NewGuid().ToString();

        using var response = await http.PostAsync("v1/shield/alerts", Json(Alert(uuid, "host")));

        var accepted = await Body(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, accepted.ToString());
        Assert.Equal(1, accepted.GetProperty("accepted").GetInt32());
        var result = Assert.Single(accepted.GetProperty("results").EnumerateArray());
        Assert.Equal("Read sensitive file untrusted", result.GetProperty("rule").GetString());
        Assert.Equal("unmatched", result.GetProperty("action").GetString());

        var mine = await Body(await http.GetAsync("v1/shield/findings"));
        Assert.Equal(tenant, mine.GetProperty("tenant").GetString());
        var finding = Assert.Single(mine.GetProperty("findings").EnumerateArray());
        Assert.Equal("Read sensitive file untrusted", finding.GetProperty("finding").GetProperty("rule").GetString());
        var theirs = await Body(await otherHttp.GetAsync("v1/shield/findings"));
        Assert.Equal(0, theirs.GetProperty("count").GetInt32());
    }

    [Theory]
    [InlineData("{not json", "malformed-json", null)]
    [InlineData("""{"priority":"Critical","time":"2024-05-01T10:22:33Z","output":"x"}""", "validation-failed", "body")]
    [InlineData("""{"rule":"r","priority":"Loud","time":"2024-05-01T10:22:33Z"}""", "validation-failed", "body")]
    [InlineData("""[{"rule":"r","priority":"Critical","time":"2024-05-01T10:22:33Z"},{"rule":"r","priority":"Critical","time":"yesterday"}]""", "validation-failed", "[1]")]
    [InlineData("[]", "validation-failed", "body")]
    [InlineData("42", "validation-failed", "body")]
    public async Task PostAlerts_Malformed_Is400ProblemAndStoresNothing(string body, string type, string? field)
    {
        var (_, key) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        using var http = fixture.Host.Client(key);

        using var response = await http.PostAsync("v1/shield/alerts", Json(body));

        _ = field is null
            ? await AssertProblem(response, HttpStatusCode.BadRequest, type)
            : await AssertProblem(response, HttpStatusCode.BadRequest, type, field);
        var findings = await Body(await http.GetAsync("v1/shield/findings?from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z"));
        Assert.Equal(0, findings.GetProperty("count").GetInt32());
    }

    [Fact]
    public async Task PostAlerts_WithoutCredential_Is401()
    {
        using var http = new HttpClient { BaseAddress = new Uri(fixture.Host.Url) };

        using var response = await http.PostAsync("v1/shield/alerts", Json(Alert(Guid.NewGuid().ToString(), "host")));

        await AssertProblem(response, HttpStatusCode.Unauthorized, "unauthorized");
    }

    [Theory]
    [InlineData("from=yesterday", "from")]
    [InlineData("to=soon", "to")]
    [InlineData("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from")]
    [InlineData("from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from")]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=many", "limit")]
    [InlineData("limit=5001", "limit")]
    public async Task GetFindings_BadQuery_Is400NamingTheField(string query, string field)
    {
        var (_, key) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        using var http = fixture.Host.Client(key);

        using var response = await http.GetAsync("v1/shield/findings?" + query);

        await AssertProblem(response, HttpStatusCode.BadRequest, "validation-failed", field);
    }

    [Theory]
    [InlineData("standard=iso27001", "standard")]
    [InlineData("", "standard")]
    [InlineData("standard=soc2&format=pdf", "format")]
    [InlineData("standard=soc2&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from")]
    [InlineData("standard=soc2&to=whenever", "to")]
    public async Task GetComplianceReport_BadQuery_Is400NamingTheField(string query, string field)
    {
        var (_, key) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        using var http = fixture.Host.Client(key);

        using var response = await http.GetAsync("v1/compliance/reports?" + query);

        await AssertProblem(response, HttpStatusCode.BadRequest, "validation-failed", field);
    }

    /// <summary>
    /// A Shield run of hostile code (prints its sandbox id, then reads /etc/shadow). With eBPF coverage on this machine
    /// the default rule quarantines it and bills the monitored seconds; without, the result says none and why, and no
    /// Shield fee is charged. Either way: another tenant's alert naming the sandbox is not attributed to the run, the
    /// owner's is, and the owner's compliance report covers the run and verifies.
    /// </summary>
    [Fact]
    public async Task ShieldRun_HostileCode_ReportsCoverageAndQuarantinesWhenCovered()
    {
        var (tenant, key) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        var (_, other) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        using var http = fixture.Host.Client(key);
        using var otherHttp = fixture.Host.Client(other);
        var from = DateTimeOffset.UtcNow.AddMinutes(-1);
        const string Hostile = "import os, time\\nprint(os.environ.get('SANDSTORM_SANDBOX_ID', ''), flush=True)\\ntry:\\n    open('/etc/shadow').read()\\nexcept OSError as e:\\n    print('refused', e.errno, flush=True)\\ntime.sleep(2)\\nprint('survived', flush=True)";

        using var response = await http.PostAsync("v1/runs?wait=60", Json($$"""{"code":"{{Hostile}}","language":"python","securityTier":"shield"}"""));

        var run = await Body(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, run.ToString());
        var runId = run.GetProperty("id").GetString()!;
        var shield = run.GetProperty("shield");
        var coverage = shield.GetProperty("coverage").GetString()!;
        var fees = run.GetProperty("cost").GetProperty("fees").GetDecimal();
        output.WriteLine($"status {run.GetProperty("status").GetString()}, fees {fees}, shield {shield}");
        if (string.Equals(coverage, "none", StringComparison.OrdinalIgnoreCase))
        {
            Assert.False(string.IsNullOrWhiteSpace(shield.GetProperty("coverageReason").GetString()), shield.ToString());
            Assert.Equal(0, shield.GetProperty("monitoredMs").GetInt64());
            Assert.Equal(0m, fees);
        }
        else
        {
            Assert.Equal("quarantined", run.GetProperty("status").GetString());
            Assert.True(shield.GetProperty("quarantined").GetBoolean(), shield.ToString());
            Assert.Contains(shield.GetProperty("findings").EnumerateArray(), f => f.GetProperty("rule").GetString() == "Read of credentials");
            Assert.DoesNotContain("survived", run.GetProperty("stdout").GetString() ?? "", StringComparison.Ordinal);
            Assert.True(shield.GetProperty("monitoredMs").GetInt64() > 0, shield.ToString());
            Assert.True(fees > 0, run.ToString());
        }

        // The sandbox's host-side id, as the code saw it: what a Falco alert names.
        var sandboxId = (run.GetProperty("stdout").GetString() ?? "").Split('\n')[0].Trim();
        Assert.Matches("^s[a-z][0-9a-f]{16}$", sandboxId);

        var theirs = await Body(await otherHttp.PostAsync("v1/shield/alerts", Json(Alert(Guid.NewGuid().ToString(), sandboxId))));
        var theirResult = Assert.Single(theirs.GetProperty("results").EnumerateArray());
        Assert.Equal("unmatched", theirResult.GetProperty("action").GetString());
        Assert.False(theirResult.TryGetProperty("runId", out var theirRun) && theirRun.ValueKind != JsonValueKind.Null, theirResult.ToString());

        var mine = await Body(await http.PostAsync("v1/shield/alerts", Json(Alert(Guid.NewGuid().ToString(), sandboxId))));
        var myResult = Assert.Single(mine.GetProperty("results").EnumerateArray());
        Assert.Equal("ended", myResult.GetProperty("action").GetString());
        Assert.Equal(runId, myResult.GetProperty("runId").GetString());

        var query = $"standard=soc2&from={Uri.EscapeDataString(from.ToString("O", CultureInfo.InvariantCulture))}&to={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(1).ToString("O", CultureInfo.InvariantCulture))}";
        using var reportResponse = await http.GetAsync("v1/compliance/reports?" + query);
        var text = await reportResponse.Content.ReadAsStringAsync();
        Assert.True(reportResponse.StatusCode == HttpStatusCode.OK, text);
        var bundle = JsonSerializer.Deserialize<ComplianceReportBundle>(text, SandstormJson.Options)!;
        var verified = ComplianceReportVerifier.Verify(bundle, bundle.PublicKeyPem);
        Assert.True(verified.Ok, string.Join("; ", verified.Failures));
        var report = JsonSerializer.Deserialize<ComplianceReport>(Convert.FromBase64String(bundle.Envelope.Payload), SandstormJson.Options)!;
        Assert.Equal("soc2", report.Standard);
        Assert.Equal(tenant, report.TenantId);
        Assert.Contains(report.Runs, r => r.RunId == runId);
        Assert.Equal(1, report.Summary.ShieldRuns);
        Assert.Equal(string.Equals(coverage, "none", StringComparison.OrdinalIgnoreCase) ? 0 : 1, report.Summary.Quarantined);

        // Another tenant's report over the same period holds none of it.
        var otherText = await (await otherHttp.GetAsync("v1/compliance/reports?" + query)).Content.ReadAsStringAsync();
        var otherBundle = JsonSerializer.Deserialize<ComplianceReportBundle>(otherText, SandstormJson.Options)!;
        var otherReport = JsonSerializer.Deserialize<ComplianceReport>(Convert.FromBase64String(otherBundle.Envelope.Payload), SandstormJson.Options)!;
        Assert.Empty(otherReport.Runs);
    }

    private static StringContent Yaml(string yaml) => new(yaml, Encoding.UTF8, "application/yaml");

    /// <summary>A Falco alert as falcosidekick's webhook posts it, timed now, naming <paramref name="containerId"/>.</summary>
    private static string Alert(string uuid, string containerId)
    {
        var time = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
        return $$"""
            {"uuid":"{{uuid}}","output":"Warning Sensitive file opened for reading by non-trusted program (file=/etc/shadow command=cat /etc/shadow)","priority":"Warning","rule":"Read sensitive file untrusted","time":"{{time}}","output_fields":{"container.id":"{{containerId}}","evt.type":"openat","fd.name":"/etc/shadow","proc.cmdline":"cat /etc/shadow","user.uid":65534},"source":"syscall","tags":["filesystem"],"hostname":"node-1"}
            """;
    }
}
