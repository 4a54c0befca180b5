using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.Daytona;
using Sandstorm.Providers.StandIns;

namespace Sandstorm.Providers.Tests;

/// <summary>Daytona adapter against the Daytona stand-in (Daytona itself cannot be reached from here).</summary>
public sealed class DaytonaProviderTests : IAsyncLifetime
{
    private const string Section = "Sandstorm:Providers:Daytona";
    private DaytonaStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await DaytonaStandIn.StartAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    private ServiceProvider Build(bool faulty = false)
    {
        var config = faulty ? ProviderHarness.Faulty(Section) : ProviderHarness.Resilience(Section);
        config[$"{Section}:BaseUrl"] = _standIn.BaseUrl.ToString();
        config[$"{Section}:ApiKey"] = DaytonaStandIn.ApiKey;
        config[$"{Section}:StartPollInterval"] = "00:00:00.050";
        if (!faulty)
        {
            config[$"{Section}:ProvisionTimeout"] = "00:00:01";
        }

        return ProviderHarness.Build(config);
    }

    [Theory]
    [InlineData(CloudStep.Create, FaultKind.DropAfter, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Create, FaultKind.HangAfter, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Create, FaultKind.Hang, Expect.ProvisionFails, 0)]
    [InlineData(CloudStep.Create, FaultKind.Reset, Expect.ProvisionFails, 0)]
    [InlineData(CloudStep.Start, FaultKind.Refuse, Expect.NeverStarted, 0)]
    [InlineData(CloudStep.Start, FaultKind.Reset, Expect.Interrupted, 0)]
    [InlineData(CloudStep.Start, FaultKind.Hang, Expect.Interrupted, 0)]
    [InlineData(CloudStep.Start, FaultKind.DropAfter, Expect.Interrupted, 1)]
    [InlineData(CloudStep.Start, FaultKind.HangAfter, Expect.Interrupted, 1)]
    [InlineData(CloudStep.Release, FaultKind.DropAfter, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Release, FaultKind.HangAfter, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Release, FaultKind.Hang, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Release, FaultKind.Reset, Expect.Succeeds, 1)]
    public async Task Run_FaultAtStep_RunsTheCodeAtMostOnceAndLeavesNothing(CloudStep step, FaultKind kind, Expect expect, int executions)
    {
        await using var sp = Build(faulty: true);
        var request = ProviderHarness.Request();
        _standIn.Faults.At(step, kind);

        // process/execute is synchronous: once it may have arrived, a lost answer is final (the toolbox keeps no handle to it).
        var run = await ProviderHarness.RunOnceAsync(sp.GetRequiredService<DaytonaProvider>(), request, ExactlyOnce.QuickSpec());

        ExactlyOnce.Check(run, expect, _standIn, request.RunId, executions);
        Assert.Equal(0, _standIn.Live);
    }

    [Fact]
    public async Task Execute_StartRefusedWith429_IsNeverStartedAndTransient()
    {
        await using var sp = Build(faulty: true);
        var request = ProviderHarness.Request();
        _standIn.Faults.At(CloudStep.Start, Fault.Http(429, """{"statusCode":429,"message":"Too many requests"}"""));

        var run = await ProviderHarness.RunOnceAsync(sp.GetRequiredService<DaytonaProvider>(), request, ExactlyOnce.QuickSpec());

        ExactlyOnce.Check(run, Expect.NeverStarted, _standIn, request.RunId, executions: 0);
        Assert.True(run.ExecuteError!.Transient);
    }

    [Fact]
    public async Task Provision_Retried_ReusesTheSandboxHoldingTheRunsName()
    {
        await using var sp = Build();
        var daytona = sp.GetRequiredService<DaytonaProvider>();
        var request = ProviderHarness.Request();

        var first = await daytona.ProvisionAsync(request, default);
        var second = await daytona.ProvisionAsync(request, default);

        Assert.Equal(first.SandboxId, second.SandboxId);
        Assert.Equal(2, _standIn.Faults.Calls("create"));
        Assert.Equal(1, _standIn.LiveFor(request.RunId));
        await daytona.ReleaseAsync(second, default);
        Assert.Equal(0, _standIn.Live);
    }

    [Fact]
    public async Task Release_DeletesEveryOtherSandboxOfTheRunByLabel()
    {
        await using var sp = Build();
        var daytona = sp.GetRequiredService<DaytonaProvider>();
        var request = ProviderHarness.Request();
        var other = await daytona.ProvisionAsync(ProviderHarness.Request(), default);
        var lease = await daytona.ProvisionAsync(request, default);
        // An unnamed sandbox of this run the lease does not name (a create made after the name was lost to a broken one).
        using var http = new HttpClient();
        using var stray = new HttpRequestMessage(HttpMethod.Post, new Uri(_standIn.BaseUrl, "sandbox"))
        {
            Content = JsonContent.Create(new { labels = new Dictionary<string, string> { ["sandstorm.run"] = request.RunId } }),
        };
        stray.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", DaytonaStandIn.ApiKey);
        (await http.SendAsync(stray)).EnsureSuccessStatusCode();
        Assert.Equal(2, _standIn.LiveFor(request.RunId));

        await daytona.ReleaseAsync(lease, default);

        Assert.Equal(0, _standIn.LiveFor(request.RunId));
        Assert.Equal(1, _standIn.LiveFor(other.RunId!));
        await daytona.ReleaseAsync(other, default);
    }

    [Fact]
    public async Task Execute_ReturnsCombinedOutputAsStdout_ExitCodeAndWholeResourceCost()
    {
        await using var sp = Build();
        var daytona = sp.GetRequiredService<DaytonaProvider>();
        _standIn.InitialState = "starting";
        var lease = await daytona.ProvisionAsync(ProviderHarness.Request(), default);
        var spec = ProviderHarness.Spec("import os, sys\nprint(open('in.txt').read(), os.environ['X'])\nprint('oops', file=sys.stderr)\nsys.exit(2)",
            files: new Dictionary<string, string> { ["in.txt"] = "file" }, env: new Dictionary<string, string> { ["X"] = "env" });
        var result = await daytona.ExecuteAsync(lease, spec, default);
        await daytona.ReleaseAsync(lease, default);

        Assert.Contains("file env\n", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("oops\n", result.Stdout, StringComparison.Ordinal);
        Assert.Equal("", result.Stderr);
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("container", result.Runtime);
        Assert.Equal(0, _standIn.Live);
        Assert.Contains(_standIn.Requests, r => r.StartsWith("GET /sandbox/", StringComparison.Ordinal));
        // 512 MiB is billed as a whole GiB.
        var billed = Math.Ceiling(result.WallTimeMs / 1000.0);
        Assert.Equal(Math.Round((decimal)(billed * (0.000014 + 0.0000045)), 8), ((ISandboxProvider)daytona).ComputeCost(lease, spec, result));
        Assert.Equal(IsolationLevel.Standard, daytona.Capabilities.Runtimes.Single().Isolation);
    }

    [Fact]
    public async Task Execute_DaemonTimeout_ReturnsTimedOut()
    {
        await using var sp = Build();
        var daytona = sp.GetRequiredService<DaytonaProvider>();
        var lease = await daytona.ProvisionAsync(ProviderHarness.Request(), default);
        var result = await daytona.ExecuteAsync(lease, ProviderHarness.Spec("import time\ntime.sleep(20)", timeout: TimeSpan.FromSeconds(1)), default);
        await daytona.ReleaseAsync(lease, default);

        Assert.True(result.TimedOut);
        Assert.Null(result.ExitCode);
    }

    [Fact]
    public async Task Provision_500_IsTransientAndNotRetried()
    {
        await using var sp = Build();
        _standIn.Faults.Add("create", Fault.Http(500, """{"statusCode":500,"message":"runner unavailable"}"""));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => sp.GetRequiredService<DaytonaProvider>().ProvisionAsync(ProviderHarness.Request(), default));

        Assert.Equal(CloudErrorCodes.ProvisionFailed, ex.Code);
        Assert.True(ex.Transient);
        Assert.Contains("runner unavailable", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, _standIn.Faults.Calls("create"));
    }

    [Fact]
    public async Task Provision_SlowAnswer_TimesOutAsTransient()
    {
        await using var sp = Build();
        _standIn.Faults.Add("create", new Fault(FaultKind.Slow, Delay: TimeSpan.FromSeconds(5)));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => sp.GetRequiredService<DaytonaProvider>().ProvisionAsync(ProviderHarness.Request(), default));

        Assert.Equal(CloudErrorCodes.Timeout, ex.Code);
        Assert.True(ex.Transient);
    }

    [Fact]
    public async Task Execute_MalformedJson_IsInterruptedNotRetried()
    {
        await using var sp = Build();
        var daytona = sp.GetRequiredService<DaytonaProvider>();
        var lease = await daytona.ProvisionAsync(ProviderHarness.Request(), default);
        _standIn.Faults.Add("execute", new Fault(FaultKind.MalformedJson));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => daytona.ExecuteAsync(lease, ProviderHarness.Spec("print(1)"), default));
        await daytona.ReleaseAsync(lease, default);

        // A 2xx whose body cannot be read: the command may have run, so it is final.
        Assert.Equal(CloudErrorCodes.ExecutionInterrupted, ex.Code);
        Assert.Contains(CloudErrorCodes.BadResponse, ex.Message, StringComparison.Ordinal);
        Assert.False(ex.Transient);
        Assert.Equal(1, _standIn.Faults.Calls("execute"));
    }

    [Fact]
    public async Task Release_429ThenSuccess_IsRetried_AndSecondReleaseIsIdempotent()
    {
        await using var sp = Build();
        var daytona = sp.GetRequiredService<DaytonaProvider>();
        var lease = await daytona.ProvisionAsync(ProviderHarness.Request(), default);
        _standIn.Faults.Add("delete", Fault.Http(429, """{"statusCode":429,"message":"Too many requests"}""", retryAfter: 0));

        await daytona.ReleaseAsync(lease, default);
        await daytona.ReleaseAsync(lease, default);

        Assert.Equal(3, _standIn.Faults.Calls("delete"));
        Assert.Equal(0, _standIn.Live);
    }

    [Fact]
    public async Task Provision_WrongKey_IsUnauthorized()
    {
        var config = ProviderHarness.Resilience(Section);
        config[$"{Section}:BaseUrl"] = _standIn.BaseUrl.ToString();
        config[$"{Section}:ApiKey"] = "wrong";
        await using var sp = ProviderHarness.Build(config);

        var ex = await Assert.ThrowsAsync<ProviderException>(() => sp.GetRequiredService<DaytonaProvider>().ProvisionAsync(ProviderHarness.Request(), default));

        Assert.Equal(CloudErrorCodes.Unauthorized, ex.Code);
        Assert.False(ex.Transient);
    }

    [Fact]
    public async Task StandIn_SpeaksTheOfficialDaytonaSdk()
    {
        var (exit, stdout, stderr) = await ProviderHarness.RunNodeAsync("daytona-check.mjs", new Dictionary<string, string>
        {
            ["DAYTONA_API_URL"] = _standIn.BaseUrl.ToString().TrimEnd('/'),
            ["DAYTONA_API_KEY"] = DaytonaStandIn.ApiKey,
        }, TimeSpan.FromSeconds(60));

        Assert.True(exit == 0, $"daytona sdk check failed ({exit}): {stderr}\n{stdout}\n{string.Join("\n", _standIn.Requests)}");
        Assert.Contains("\"exitCode\":0", stdout, StringComparison.Ordinal);
        Assert.Contains("42\\n", stdout, StringComparison.Ordinal);
        Assert.Contains("err\\n", stdout, StringComparison.Ordinal);
        Assert.Contains(_standIn.Requests, r => r.EndsWith("/process/execute", StringComparison.Ordinal) && r.Contains("/toolbox/dtn-", StringComparison.Ordinal));
        Assert.Equal(0, _standIn.Live);
    }
}
