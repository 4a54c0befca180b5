using System.Diagnostics;
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

    private ServiceProvider Build(int breakerThroughput = 1000, string apiKey = E2BStandIn.ApiKey)
    {
        var config = ProviderHarness.Resilience(Section, breakerThroughput);
        config[$"{Section}:BaseUrl"] = _standIn.BaseUrl.ToString();
        config[$"{Section}:SandboxUrl"] = _standIn.BaseUrl.ToString();
        config[$"{Section}:ApiKey"] = apiKey;
        config[$"{Section}:StreamIdleTimeout"] = "00:00:02";
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

    [Fact]
    public async Task Execute_SilentStream_FailsWithStreamStalledAfterReadTimeout()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        var lease = await e2b.ProvisionAsync(ProviderHarness.Request(), default);
        _standIn.Faults.Add("start", new Fault(FaultKind.Silent));

        var watch = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<ProviderException>(() => e2b.ExecuteAsync(lease, ProviderHarness.Spec("print(1)", timeout: TimeSpan.FromSeconds(20)), default));
        watch.Stop();
        await e2b.ReleaseAsync(lease, default);

        Assert.Equal(CloudErrorCodes.StreamStalled, ex.Code);
        Assert.True(ex.Transient);
        // Detected by the 2 s read timeout, long before the 20 s run timeout.
        Assert.InRange(watch.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Execute_StreamCutMidOutput_FailsWithSandboxLostAndIsNotRetried()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        var lease = await e2b.ProvisionAsync(ProviderHarness.Request(), default);
        _standIn.Faults.Add("start", new Fault(FaultKind.CutStream));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => e2b.ExecuteAsync(lease, ProviderHarness.Spec("import time\nprint('a', flush=True)\ntime.sleep(1)\nprint('b')"), default));
        await e2b.ReleaseAsync(lease, default);

        Assert.Equal(CloudErrorCodes.SandboxLost, ex.Code);
        Assert.True(ex.Transient);
        Assert.Equal(1, _standIn.Faults.Calls("start"));
    }

    [Fact]
    public async Task Execute_SandboxDiesDuringExecution_FailsWithSandboxLost_AndReleaseStillSucceeds()
    {
        await using var sp = Build();
        var e2b = sp.GetRequiredService<E2BProvider>();
        var lease = await e2b.ProvisionAsync(ProviderHarness.Request(), default);
        _standIn.Faults.Add("start", new Fault(FaultKind.Die));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => e2b.ExecuteAsync(lease, ProviderHarness.Spec("import time\nprint('a', flush=True)\ntime.sleep(2)"), default));
        Assert.Equal(CloudErrorCodes.SandboxLost, ex.Code);

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
        _standIn.Faults.Add("create", Fault.Http(500), times: 3);

        for (var i = 0; i < 3; i++)
        {
            await Assert.ThrowsAsync<ProviderException>(() => e2b.ProvisionAsync(ProviderHarness.Request(), default));
        }

        var state = health.GetHealth("e2b");
        Assert.False(state.Available);
        Assert.Equal(1.0, state.FailureRate);
        var ex = await Assert.ThrowsAsync<ProviderException>(() => e2b.ProvisionAsync(ProviderHarness.Request(), default));
        Assert.Equal(CloudErrorCodes.Unavailable, ex.Code);
        Assert.True(ex.Transient);
        Assert.Equal(3, _standIn.Faults.Calls("create"));
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
