using System.Diagnostics;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.E2B;
using Sandstorm.Providers.Health;
using Sandstorm.Providers.StandIns;

namespace Sandstorm.Providers.Tests;

/// <summary>E2B adapter against the E2B stand-in (E2B itself cannot be reached from here).</summary>
public sealed class E2BProviderTests : IAsyncLifetime
{
    private const string Section = "Sandstorm:Providers:E2B";
    private E2BStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await E2BStandIn.StartAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    private ServiceProvider Build(int breakerThroughput = 1000, string apiKey = E2BStandIn.ApiKey, bool faulty = false)
    {
        var config = faulty ? ProviderHarness.Faulty(Section) : ProviderHarness.Resilience(Section, breakerThroughput);
        config[$"{Section}:BaseUrl"] = _standIn.BaseUrl.ToString();
        config[$"{Section}:SandboxUrl"] = _standIn.BaseUrl.ToString();
        config[$"{Section}:ApiKey"] = apiKey;
        config[$"{Section}:StreamIdleTimeout"] = faulty ? "00:00:04" : "00:00:02";
        config[$"{Section}:KeepaliveInterval"] = "00:00:01";
        return ProviderHarness.Build(config);
    }

    [Fact]
    public async Task Execute_PythonWithFilesAndEnv_ReturnsRealOutputExitCodeAndCost()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        var lease = await e2b.ProvisionAsync(ProviderHarness.Request(), default);
        try
        {
            var spec = ProviderHarness.Spec(
                "import os, sys\nprint(open('data/in.txt').read().strip(), os.environ['GREETING'])\nprint('to stderr', file=sys.stderr)\nsys.exit(3)",
                files: new Dictionary<string, string> { ["data/in.txt"] = "héllo" },
                env: new Dictionary<string, string> { ["GREETING"] = "wörld" });
            var result = await e2b.ExecuteAsync(lease, spec, default);

            Assert.Equal("héllo wörld\n", result.Stdout);
            Assert.Equal("to stderr\n", result.Stderr);
            Assert.Equal(3, result.ExitCode);
            Assert.Equal("firecracker", result.Runtime);
            Assert.False(result.TimedOut);
            var cost = ((ISandboxProvider)e2b).ComputeCost(lease, spec, result);
            var billedSeconds = Math.Ceiling(result.WallTimeMs / 1000.0);
            Assert.Equal(Math.Round((decimal)(billedSeconds * (0.000014 + 0.5 * 0.0000045)), 8), cost);
        }
        finally
        {
            await e2b.ReleaseAsync(lease, default);
        }

        Assert.Equal(0, _standIn.Live);
    }

    [Fact]
    public void Capabilities_DeclareFirecrackerAtMaximumOnly()
    {
        using var sp = Build();
        var caps = sp.GetRequiredService<E2BProvider>().Capabilities;
        Assert.Equal(new[] { new RuntimeOffer("firecracker", IsolationLevel.Maximum) }, caps.Runtimes);
        Assert.Equal(0.000014, caps.Price.VcpuSecond);
        Assert.Equal(0.0000045, caps.Price.GibSecond);
    }

    [Fact]
    public async Task Execute_OutputBeyondLimit_IsCappedAndFlagged()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        var lease = await e2b.ProvisionAsync(ProviderHarness.Request(), default);
        var result = await e2b.ExecuteAsync(lease, ProviderHarness.Spec("import sys\nfor i in range(2000): print('x' * 50)\nprint('e' * 10, file=sys.stderr)", outputLimit: 1000), default);
        await e2b.ReleaseAsync(lease, default);

        Assert.Equal(1000, result.Stdout.Length);
        Assert.True(result.StdoutTruncated);
        Assert.False(result.StderrTruncated);
        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public async Task Execute_RunLongerThanTimeout_ReturnsTimedOut()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        var lease = await e2b.ProvisionAsync(ProviderHarness.Request(), default);
        var result = await e2b.ExecuteAsync(lease, ProviderHarness.Spec("import time\nprint('before', flush=True)\ntime.sleep(30)", timeout: TimeSpan.FromSeconds(6)), default);
        await e2b.ReleaseAsync(lease, default);

        Assert.True(result.TimedOut);
        Assert.Null(result.ExitCode);
        Assert.Equal("before\n", result.Stdout);
    }

    [Theory]
    [InlineData(CloudStep.Create, FaultKind.DropAfter, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Create, FaultKind.HangAfter, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Create, FaultKind.Hang, Expect.ProvisionFails, 0)]
    [InlineData(CloudStep.Create, FaultKind.Reset, Expect.ProvisionFails, 0)]
    [InlineData(CloudStep.Start, FaultKind.Refuse, Expect.NeverStarted, 0)]
    [InlineData(CloudStep.Start, FaultKind.Reset, Expect.Interrupted, 0)]
    [InlineData(CloudStep.Start, FaultKind.Hang, Expect.Interrupted, 0)]
    [InlineData(CloudStep.Start, FaultKind.DropAfter, Expect.SucceedsReattached, 1)]
    [InlineData(CloudStep.Start, FaultKind.HangAfter, Expect.SucceedsReattached, 1)]
    [InlineData(CloudStep.Stream, FaultKind.CutStream, Expect.SucceedsReattached, 1)]
    [InlineData(CloudStep.Stream, FaultKind.Silent, Expect.SucceedsReattached, 1)]
    [InlineData(CloudStep.Release, FaultKind.DropAfter, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Release, FaultKind.HangAfter, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Release, FaultKind.Hang, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Release, FaultKind.Reset, Expect.Succeeds, 1)]
    public async Task Run_FaultAtStep_RunsTheCodeAtMostOnceAndLeavesNothing(CloudStep step, FaultKind kind, Expect expect, int executions)
    {
        await using var sp = Build(faulty: true);
        var e2b = sp.GetRequiredService<E2BProvider>();
        var request = ProviderHarness.Request();
        _standIn.Faults.At(step, kind);
        // The code finishes only once a broken stream is reattached (or at once when the fault is elsewhere).
        using var gate = new Gate();
        gate.OpenWhen(() => expect != Expect.SucceedsReattached || _standIn.Reattached > 0);

        var run = await ProviderHarness.RunOnceAsync(e2b, request, ProviderHarness.Spec(gate.PythonCode(), timeout: TimeSpan.FromSeconds(30)));

        ExactlyOnce.Check(run, expect, _standIn, request.RunId, executions);
        Assert.Equal(0, _standIn.Live);
        // A lost create answer is found again by the run's tag, never created twice.
        Assert.True(_standIn.Faults.Calls("create") == 1, $"{_standIn.Faults.Calls("create")} creates");
    }

    [Fact]
    public async Task Execute_ProcessEndsWhileDetached_IsInterruptedAndNotRunAgain()
    {
        await using var sp = Build(faulty: true);
        var e2b = sp.GetRequiredService<E2BProvider>();
        var request = ProviderHarness.Request();
        _standIn.Faults.At(CloudStep.Stream, FaultKind.Silent);

        // The code is done long before the stuck stream is noticed: nothing is left to reattach to.
        var run = await ProviderHarness.RunOnceAsync(e2b, request, ProviderHarness.Spec("print(1)"));

        ExactlyOnce.Check(run, Expect.Interrupted, _standIn, request.RunId, executions: 1);
        Assert.Contains("no longer running", run.ExecuteError!.Message, StringComparison.Ordinal);
        Assert.Equal(1, _standIn.Faults.Calls("start"));
        Assert.Equal(1, _standIn.Faults.Calls("connect"));
    }

    [Fact]
    public async Task Execute_StartRefusedWith429_IsNeverStartedAndTransient()
    {
        await using var sp = Build(faulty: true);
        var e2b = sp.GetRequiredService<E2BProvider>();
        var request = ProviderHarness.Request();
        _standIn.Faults.At(CloudStep.Start, Fault.Http(429, """{"code":429,"message":"too many processes"}"""));

        var run = await ProviderHarness.RunOnceAsync(e2b, request, ExactlyOnce.LongSpec());

        ExactlyOnce.Check(run, Expect.NeverStarted, _standIn, request.RunId, executions: 0);
        Assert.True(run.ExecuteError!.Transient);
        Assert.Equal(CloudErrorCodes.RateLimited, run.ExecuteError.Code);
    }

    [Fact]
    public async Task Execute_UploadFails_IsNeverStarted()
    {
        await using var sp = Build(faulty: true);
        var e2b = sp.GetRequiredService<E2BProvider>();
        var request = ProviderHarness.Request();
        _standIn.Faults.Add("files", Fault.Http(500), times: 10);

        var run = await ProviderHarness.RunOnceAsync(e2b, request, ExactlyOnce.LongSpec());

        ExactlyOnce.Check(run, Expect.NeverStarted, _standIn, request.RunId, executions: 0);
        Assert.Equal(0, _standIn.Faults.Calls("start"));
    }

    [Fact]
    public async Task Provision_Retried_ReusesTheRunsSandbox()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        var request = ProviderHarness.Request();

        var first = await e2b.ProvisionAsync(request, default);
        var second = await e2b.ProvisionAsync(request, default);

        Assert.Equal(first.SandboxId, second.SandboxId);
        Assert.Equal(1, _standIn.LiveFor(request.RunId));
        Assert.Equal(1, _standIn.Faults.Calls("create"));
        var result = await e2b.ExecuteAsync(second, ProviderHarness.Spec("print('reused')"), default);
        Assert.Equal("reused\n", result.Stdout);
        await e2b.ReleaseAsync(second, default);
        Assert.Equal(0, _standIn.Live);
    }

    [Fact]
    public async Task Release_DeletesEveryOtherSandboxOfTheRun()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        var request = ProviderHarness.Request();
        var other = await e2b.ProvisionAsync(ProviderHarness.Request(), default);
        var lease = await e2b.ProvisionAsync(request, default);
        // A create of this run whose answer was lost, landing after the lease's own: E2B holds a sandbox the lease does not name.
        using var http = new HttpClient();
        using var stray = new HttpRequestMessage(HttpMethod.Post, new Uri(_standIn.BaseUrl, "v2/sandboxes"))
        {
            Content = JsonContent.Create(new { templateID = "base", timeout = 60, metadata = new Dictionary<string, string> { ["sandstorm.run"] = request.RunId } }),
        };
        stray.Headers.Add("X-API-Key", E2BStandIn.ApiKey);
        (await http.SendAsync(stray)).EnsureSuccessStatusCode();
        Assert.Equal(2, _standIn.LiveFor(request.RunId));

        await e2b.ReleaseAsync(lease, default);

        Assert.Equal(0, _standIn.LiveFor(request.RunId));
        Assert.True(_standIn.Exists(other.SandboxId), "another run's sandbox was deleted");
        await e2b.ReleaseAsync(other, default);
    }

    [Fact]
    public async Task ReleaseRun_AfterAFailedProvision_DeletesTheSandboxWhoseCreateLanded()
    {
        await using var sp = Build(faulty: true);
        var e2b = sp.GetRequiredService<E2BProvider>();
        var request = ProviderHarness.Request();
        // The create lands but its answer is lost, and the lookup after it fails too: the provision fails, the sandbox exists.
        _standIn.Faults.Add("list", new Fault(FaultKind.Pass));
        _standIn.Faults.Add("list", Fault.Http(500), times: 4);
        _standIn.Faults.At(CloudStep.Create, FaultKind.HangAfter);
        var failed = await Assert.ThrowsAsync<ProviderException>(() => e2b.ProvisionAsync(request, default));
        Assert.Equal(CloudErrorCodes.Timeout, failed.Code);
        Assert.Equal(1, _standIn.LiveFor(request.RunId));

        await ((ISandboxProvider)e2b).ReleaseRunAsync(request.RunId, request.TenantId, default);

        Assert.Equal(0, _standIn.Live);
    }

    [Fact]
    public async Task Execute_SandboxDiesDuringExecution_FailsWithSandboxLostFinal_AndReleaseStillSucceeds()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        var lease = await e2b.ProvisionAsync(ProviderHarness.Request(), default);
        _standIn.Faults.Add("start", new Fault(FaultKind.Die));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => e2b.ExecuteAsync(lease, ProviderHarness.Spec("import time\nprint('a', flush=True)\ntime.sleep(2)"), default));
        Assert.Equal(CloudErrorCodes.SandboxLost, ex.Code);
        Assert.False(ex.Transient);
        Assert.False(ex.NeverStarted);

        // The sandbox is gone (DELETE answers 404): release must still succeed.
        await e2b.ReleaseAsync(lease, default);
        Assert.Equal(1, _standIn.Faults.Calls("delete"));
    }

    [Fact]
    public async Task Provision_429WithRetryAfter_IsTransientRateLimitedAndNotRetried()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        _standIn.Faults.Add("create", Fault.Http(429, """{"code":429,"message":"You have reached the maximum number of concurrent E2B sandboxes"}""", retryAfter: 1));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => e2b.ProvisionAsync(ProviderHarness.Request(), default));

        Assert.Equal(CloudErrorCodes.RateLimited, ex.Code);
        Assert.True(ex.Transient);
        Assert.Contains("concurrent", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, _standIn.Faults.Calls("create"));
    }

    [Theory]
    [InlineData(500, """{"code":500,"message":"internal"}""", CloudErrorCodes.ProvisionFailed, true)]
    [InlineData(401, """{"code":401,"message":"Invalid API key"}""", CloudErrorCodes.Unauthorized, false)]
    [InlineData(403, """{"code":403,"message":"Team has exhausted its credits quota"}""", CloudErrorCodes.QuotaExceeded, false)]
    [InlineData(400, """{"code":400,"message":"template not found"}""", CloudErrorCodes.ProvisionFailed, false)]
    [InlineData(400, """{"code":400,"message":"requested memory exceeds limit: out of memory"}""", CloudErrorCodes.OutOfMemory, false)]
    public async Task Provision_ErrorStatus_MapsToStableCode(int status, string body, string code, bool transient)
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        _standIn.Faults.Add("create", Fault.Http(status, body));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => e2b.ProvisionAsync(ProviderHarness.Request(), default));

        Assert.Equal(code, ex.Code);
        Assert.Equal(transient, ex.Transient);
        Assert.Equal(1, _standIn.Faults.Calls("create"));
    }

    [Fact]
    public async Task Provision_MalformedJson_IsBadResponse()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        _standIn.Faults.Add("create", new Fault(FaultKind.MalformedJson));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => e2b.ProvisionAsync(ProviderHarness.Request(), default));

        Assert.Equal(CloudErrorCodes.BadResponse, ex.Code);
    }

    [Fact]
    public async Task Release_503WithRetryAfter_IsRetriedAfterTheDelay()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        var lease = await e2b.ProvisionAsync(ProviderHarness.Request(), default);
        _standIn.Faults.Add("delete", Fault.Http(503, retryAfter: 1));

        var watch = Stopwatch.StartNew();
        await e2b.ReleaseAsync(lease, default);

        Assert.Equal(2, _standIn.Faults.Calls("delete"));
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(0.9), $"retried after {watch.Elapsed}, before Retry-After");
        Assert.False(_standIn.Exists(lease.SandboxId));
    }

    [Fact]
    public async Task Release_Twice_IsIdempotent()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        var lease = await e2b.ProvisionAsync(ProviderHarness.Request(), default);

        await e2b.ReleaseAsync(lease, default);
        await e2b.ReleaseAsync(lease, default);

        Assert.Equal(2, _standIn.Faults.Calls("delete"));
        Assert.Equal(0, _standIn.Live);
    }

    [Fact]
    public async Task Execute_OnAnotherWorker_FetchesTheEnvdTokenFromTheControlPlane()
    {
        await using var provisioner = Build();
        await using var executor = Build();
        var lease = await provisioner.GetRequiredService<E2BProvider>().ProvisionAsync(ProviderHarness.Request(), default);

        var result = await executor.GetRequiredService<E2BProvider>().ExecuteAsync(lease, ProviderHarness.Spec("print('elsewhere')"), default);
        await executor.GetRequiredService<E2BProvider>().ReleaseAsync(lease, default);

        Assert.Equal("elsewhere\n", result.Stdout);
        Assert.Equal(1, _standIn.Faults.Calls("get"));
    }

    [Fact]
    public async Task Breaker_OpensAfterTransientFailures_HealthReportsUnavailable_AndCallsFailFast()
    {
        await using var sp = Build(breakerThroughput: 3);
        var e2b = sp.GetRequiredService<E2BProvider>();
        var health = sp.GetRequiredService<IProviderHealthSource>();
        Assert.True(health.GetHealth("e2b").Available);
        _standIn.Faults.Outage = Fault.Http(500);

        // Tenant A's provision: its lookup fails (retried: it is idempotent) until the provider's breaker opens.
        await Assert.ThrowsAsync<ProviderException>(() => e2b.ProvisionAsync(ProviderHarness.Request(tenant: "tenant-a"), default));
        var calls = _standIn.Faults.Calls("list");

        var state = health.GetHealth("e2b");
        Assert.False(state.Available);
        Assert.Equal(1.0, state.FailureRate);
        var ex = await Assert.ThrowsAsync<ProviderException>(() => e2b.ProvisionAsync(ProviderHarness.Request(tenant: "tenant-b"), default));
        Assert.Equal(CloudErrorCodes.Unavailable, ex.Code);
        Assert.True(ex.Transient);
        Assert.True(ex.NeverStarted);
        // Failing fast for tenant B too (the provider's own failures open the provider's breaker): nothing more reached it.
        Assert.Equal(calls, _standIn.Faults.Calls("list"));
        Assert.Equal(0, _standIn.Faults.Calls("create"));
    }

    [Fact]
    public async Task Breaker_OneTenantsRateLimits_OpenItsOwnCircuitOnly()
    {
        await using var sp = Build(breakerThroughput: 3);
        var e2b = sp.GetRequiredService<E2BProvider>();
        var health = sp.GetRequiredService<IProviderHealthSource>();
        _standIn.Faults.Add("create", Fault.Http(429, """{"code":429,"message":"You have reached the maximum number of concurrent E2B sandboxes"}"""), times: 10);

        // Tenant A is turned away until its own circuit opens.
        for (var i = 0; i < 10 && health.GetHealth("e2b", "tenant-a").Available; i++)
        {
            var rejected = await Assert.ThrowsAsync<ProviderException>(() => e2b.ProvisionAsync(ProviderHarness.Request(tenant: "tenant-a"), default));
            Assert.Equal(CloudErrorCodes.RateLimited, rejected.Code);
        }

        _standIn.Faults.Clear("create");
        Assert.False(health.GetHealth("e2b", "tenant-a").Available);
        var (lists, creates) = (_standIn.Faults.Calls("list"), _standIn.Faults.Calls("create"));
        Assert.True(creates >= 2, $"{creates} creates");

        // Its calls now fail fast without reaching E2B.
        var paused = await Assert.ThrowsAsync<ProviderException>(() => e2b.ProvisionAsync(ProviderHarness.Request(tenant: "tenant-a"), default));
        Assert.Equal(CloudErrorCodes.RateLimited, paused.Code);
        Assert.True(paused.Transient);
        Assert.True(paused.NeverStarted);
        Assert.Equal((lists, creates), (_standIn.Faults.Calls("list"), _standIn.Faults.Calls("create")));

        // Tenant B is served, and the provider is healthy for everyone else: 429s are not the provider's failures.
        var lease = await e2b.ProvisionAsync(ProviderHarness.Request(tenant: "tenant-b"), default);
        await e2b.ReleaseAsync(lease, default);
        Assert.Equal(creates + 1, _standIn.Faults.Calls("create"));
        Assert.True(health.GetHealth("e2b", "tenant-b").Available);
        Assert.True(health.GetHealth("e2b").Available);
        Assert.Equal(0, health.GetHealth("e2b").FailureRate);
    }

    [Fact]
    public async Task Health_AfterCalls_ReportsLatencyPercentiles()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        for (var i = 0; i < 3; i++)
        {
            await e2b.ReleaseAsync(await e2b.ProvisionAsync(ProviderHarness.Request(), default), default);
        }

        var health = sp.GetRequiredService<IProviderHealthSource>().GetHealth("e2b");
        Assert.True(health.Available);
        Assert.Equal(0, health.FailureRate);
        Assert.True(health.P50LatencyMs > 0);
        Assert.True(health.P95LatencyMs >= health.P50LatencyMs);
    }

    [Fact]
    public async Task StandIn_SpeaksTheOfficialE2BSdk()
    {
        var (exit, stdout, stderr) = await ProviderHarness.RunNodeAsync("e2b-check.mjs", new Dictionary<string, string>
        {
            ["E2B_API_URL"] = _standIn.BaseUrl.ToString().TrimEnd('/'),
            ["E2B_SANDBOX_URL"] = _standIn.BaseUrl.ToString().TrimEnd('/'),
            ["E2B_API_KEY"] = E2BStandIn.ApiKey,
        }, TimeSpan.FromSeconds(60));

        Assert.True(exit == 0, $"e2b sdk check failed ({exit}): {stderr}\n{stdout}\n{string.Join("\n", _standIn.Requests)}");
        Assert.Contains("\"stdout\":\"1\\n\"", stdout, StringComparison.Ordinal);
        Assert.Contains("\"exitCode\":0", stdout, StringComparison.Ordinal);
        Assert.Contains("\"cat\":\"written by the sdk\"", stdout, StringComparison.Ordinal);
        Assert.Contains("\"killed\":true", stdout, StringComparison.Ordinal);
        Assert.Equal(0, _standIn.Live);
    }
}
