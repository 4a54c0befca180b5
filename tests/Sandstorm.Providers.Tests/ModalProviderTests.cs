using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.Modal;
using Sandstorm.Providers.Modal.Protocol;
using Sandstorm.Providers.StandIns;

namespace Sandstorm.Providers.Tests;

/// <summary>Modal adapter against the gRPC stand-in (Modal itself cannot be reached from here).</summary>
public sealed class ModalProviderTests : IAsyncLifetime
{
    private const string Section = "Sandstorm:Providers:Modal";
    private ModalStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await ModalStandIn.StartAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    private ServiceProvider Build(string secret = ModalStandIn.TokenSecret, bool faulty = false)
    {
        var config = faulty ? ProviderHarness.Faulty(Section) : ProviderHarness.Resilience(Section);
        config[$"{Section}:BaseUrl"] = _standIn.BaseUrl.ToString();
        config[$"{Section}:TokenId"] = ModalStandIn.TokenId;
        config[$"{Section}:TokenSecret"] = secret;
        config[$"{Section}:OutputPollTimeout"] = "00:00:01";
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
    [InlineData(CloudStep.Stream, FaultKind.CutStream, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Stream, FaultKind.Silent, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Release, FaultKind.DropAfter, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Release, FaultKind.HangAfter, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Release, FaultKind.Hang, Expect.Succeeds, 1)]
    [InlineData(CloudStep.Release, FaultKind.Reset, Expect.Succeeds, 1)]
    public async Task Run_FaultAtStep_RunsTheCodeAtMostOnceAndLeavesNothing(CloudStep step, FaultKind kind, Expect expect, int executions)
    {
        await using var sp = Build(faulty: true);
        var request = ProviderHarness.Request();
        _standIn.Faults.At(step, kind);

        var run = await ProviderHarness.RunOnceAsync(sp.GetRequiredService<ModalProvider>(), request, ExactlyOnce.LongSpec());

        ExactlyOnce.Check(run, expect, _standIn, request.RunId, executions);
        Assert.Equal(0, _standIn.Live);
        if (expect == Expect.Succeeds)
        {
            // Output is read by batch index: a cut or stuck read resumes where it stopped, nothing is lost.
            Assert.Equal("a\nb\n", run.Result!.Stdout);
        }
    }

    [Fact]
    public async Task Execute_StartRefusedWithResourceExhausted_IsNeverStartedAndTransient()
    {
        await using var sp = Build(faulty: true);
        var request = ProviderHarness.Request();
        _standIn.Faults.At(CloudStep.Start, new Fault(FaultKind.Status, (int)StatusCode.ResourceExhausted, "too many execs"));

        var run = await ProviderHarness.RunOnceAsync(sp.GetRequiredService<ModalProvider>(), request, ExactlyOnce.LongSpec());

        ExactlyOnce.Check(run, Expect.NeverStarted, _standIn, request.RunId, executions: 0);
        Assert.True(run.ExecuteError!.Transient);
        Assert.Equal(CloudErrorCodes.RateLimited, run.ExecuteError.Code);
    }

    [Fact]
    public async Task Provision_Retried_ReusesTheSandboxHoldingTheRunsName()
    {
        await using var sp = Build();
        var modal = sp.GetRequiredService<ModalProvider>();
        var request = ProviderHarness.Request();

        var first = await modal.ProvisionAsync(request, default);
        var second = await modal.ProvisionAsync(request, default);

        Assert.Equal(first.SandboxId, second.SandboxId);
        Assert.Equal(1, _standIn.LiveFor(request.RunId));
        await modal.ReleaseAsync(second, default);
        Assert.Equal(0, _standIn.Live);
    }

    [Fact]
    public async Task Execute_RunsThroughContainerExec_WithSeparateStreamsExitCodeAndFiles()
    {
        await using var sp = Build();
        var modal = sp.GetRequiredService<ModalProvider>();
        var lease = await modal.ProvisionAsync(ProviderHarness.Request(), default);
        var spec = ProviderHarness.Spec("import os, sys\nprint(open('cfg/a.txt').read(), os.environ['K'])\nprint('warn', file=sys.stderr)\nsys.exit(5)",
            files: new Dictionary<string, string> { ["cfg/a.txt"] = "it's \"quoted\"" }, env: new Dictionary<string, string> { ["K"] = "v'1" });
        var result = await modal.ExecuteAsync(lease, spec, default);
        await modal.ReleaseAsync(lease, default);

        Assert.Equal("it's \"quoted\" v'1\n", result.Stdout);
        Assert.Equal("warn\n", result.Stderr);
        Assert.Equal(5, result.ExitCode);
        Assert.Equal("gvisor", result.Runtime);
        Assert.Equal(0, _standIn.Live);
        // 1 vCPU = half a physical core.
        Assert.Equal(500u, _standIn.Service.LastDefinition!.Resources.MilliCpu);
        Assert.Equal(512u, _standIn.Service.LastDefinition.Resources.MemoryMb);
        Assert.True(_standIn.Service.LastDefinition.BlockNetwork);
        // What current Modal servers expect of a client: a long-poll timeout on the task lookup, raw output bytes,
        // and a server-side limit on the command.
        Assert.True(_standIn.Service.LastTaskIdRequest!.HasTimeout);
        Assert.True(_standIn.Service.LastOutputRequest!.GetRawBytes);
        Assert.Equal((uint)(spec.Timeout + TimeSpan.FromSeconds(5)).TotalSeconds, _standIn.Service.LastExecRequest!.TimeoutSecs);
    }

    [Fact]
    public async Task Execute_MultiByteOutput_ArrivesIntactAsRawBytes()
    {
        await using var sp = Build();
        var modal = sp.GetRequiredService<ModalProvider>();
        var lease = await modal.ProvisionAsync(ProviderHarness.Request(), default);

        // Written and flushed a byte at a time, so a character can be split between output chunks.
        var result = await modal.ExecuteAsync(lease, ProviderHarness.Spec(
            "import sys\nfor b in 'héllo wörld ✓'.encode(): sys.stdout.buffer.write(bytes([b])); sys.stdout.flush()"), default);
        await modal.ReleaseAsync(lease, default);

        Assert.Equal("héllo wörld ✓", result.Stdout);
    }

    [Fact]
    public async Task Provision_SandboxEndsBeforeItRuns_FailsAtOnceAndTerminatesIt()
    {
        await using var sp = Build();
        _standIn.Service.EndTasksWith = new GenericResult { Status = GenericResult.Types.GenericStatus.InitFailure, Exception = "image entrypoint failed" };

        var ex = await Assert.ThrowsAsync<ProviderException>(() => sp.GetRequiredService<ModalProvider>().ProvisionAsync(ProviderHarness.Request(), default));

        Assert.Equal(CloudErrorCodes.ProvisionFailed, ex.Code);
        Assert.Contains("image entrypoint failed", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, _standIn.Faults.Calls("taskid"));
        Assert.Equal(0, _standIn.Live);
    }

    [Fact]
    public void ComputeCost_BillsPhysicalCoresWithTheEighthCoreMinimum()
    {
        using var sp = Build();
        ISandboxProvider modal = sp.GetRequiredService<ModalProvider>();
        var lease = new SandboxLease("modal", "sb-1", "gvisor", "us-east");
        var result = new ExecutionResult { Runtime = "gvisor", WallTimeMs = 10_000 };

        var tiny = modal.ComputeCost(lease, ProviderHarness.Spec("") with { Cpu = 0.1, MemoryMiB = 1024 }, result);
        var two = modal.ComputeCost(lease, ProviderHarness.Spec("") with { Cpu = 2, MemoryMiB = 1024 }, result);

        Assert.Equal(Math.Round((decimal)(10 * ((0.125 * 0.00003942) + 0.00000672)), 8), tiny);
        Assert.Equal(Math.Round((decimal)(10 * (0.00003942 + 0.00000672)), 8), two);
        Assert.Equal(IsolationLevel.Strong, modal.Capabilities.Runtimes.Single().Isolation);
    }

    [Fact]
    public async Task Execute_RunLongerThanTimeout_ReturnsTimedOut()
    {
        await using var sp = Build();
        var modal = sp.GetRequiredService<ModalProvider>();
        var lease = await modal.ProvisionAsync(ProviderHarness.Request(), default);
        var result = await modal.ExecuteAsync(lease, ProviderHarness.Spec("import time\nprint('x', flush=True)\ntime.sleep(30)", timeout: TimeSpan.FromSeconds(10)), default);
        await modal.ReleaseAsync(lease, default);

        Assert.True(result.TimedOut);
        Assert.Equal("x\n", result.Stdout);
    }

    [Fact]
    public async Task Execute_SandboxDies_FailsWithSandboxLost()
    {
        await using var sp = Build();
        var modal = sp.GetRequiredService<ModalProvider>();
        var lease = await modal.ProvisionAsync(ProviderHarness.Request(), default);
        _standIn.Faults.Add("exec", new Fault(FaultKind.Die));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => modal.ExecuteAsync(lease, ProviderHarness.Spec("import time\nprint('a', flush=True)\ntime.sleep(5)"), default));
        await modal.ReleaseAsync(lease, default);

        Assert.Equal(CloudErrorCodes.SandboxLost, ex.Code);
        // The code ran: final, never retried.
        Assert.False(ex.Transient);
        Assert.False(ex.NeverStarted);
    }

    [Fact]
    public async Task Provision_ResourceExhausted_IsRateLimitedAndNotRetried()
    {
        await using var sp = Build();
        _standIn.Faults.Add("create", new Fault(FaultKind.Status, (int)StatusCode.ResourceExhausted, "concurrent sandbox limit reached"));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => sp.GetRequiredService<ModalProvider>().ProvisionAsync(ProviderHarness.Request(), default));

        Assert.Equal(CloudErrorCodes.RateLimited, ex.Code);
        Assert.True(ex.Transient);
        Assert.Equal(1, _standIn.Faults.Calls("create"));
    }

    [Fact]
    public async Task Provision_AppLookupUnavailable_IsRetriedBecauseGetOrCreateIsIdempotent()
    {
        await using var sp = Build();
        _standIn.Faults.Add("app", new Fault(FaultKind.Status, (int)StatusCode.Unavailable, "try again"), times: 2);

        var lease = await sp.GetRequiredService<ModalProvider>().ProvisionAsync(ProviderHarness.Request(), default);
        await sp.GetRequiredService<ModalProvider>().ReleaseAsync(lease, default);

        Assert.Equal(3, _standIn.Faults.Calls("app"));
    }

    [Fact]
    public async Task Provision_BadToken_IsUnauthorized()
    {
        await using var sp = Build(secret: "wrong");

        var ex = await Assert.ThrowsAsync<ProviderException>(() => sp.GetRequiredService<ModalProvider>().ProvisionAsync(ProviderHarness.Request(), default));

        Assert.Equal(CloudErrorCodes.Unauthorized, ex.Code);
        Assert.False(ex.Transient);
    }

    [Fact]
    public async Task Release_Twice_IsIdempotent()
    {
        await using var sp = Build();
        var modal = sp.GetRequiredService<ModalProvider>();
        var lease = await modal.ProvisionAsync(ProviderHarness.Request(), default);

        await modal.ReleaseAsync(lease, default);
        await modal.ReleaseAsync(lease, default);

        Assert.Equal(2, _standIn.Faults.Calls("terminate"));
        Assert.Equal(0, _standIn.Live);
    }
}
