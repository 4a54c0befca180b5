using System.Text;
using Azure.Core;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Aca;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.StandIns;

namespace Sandstorm.Providers.Tests;

/// <summary>ACA dynamic sessions adapter against the session-pool stand-in, with a fake credential (no Entra ID here).</summary>
public sealed class AcaProviderTests : IAsyncLifetime
{
    private const string Section = "Sandstorm:Providers:Aca";
    private AcaStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await AcaStandIn.StartAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    private ServiceProvider Build(FakeCredential credential, bool faulty = false)
    {
        var config = faulty ? ProviderHarness.Faulty(Section) : ProviderHarness.Resilience(Section);
        config[$"{Section}:PoolManagementEndpoint"] = _standIn.PoolEndpoint.ToString();
        return ProviderHarness.Build(config, s => s.AddKeyedSingleton<TokenCredential>(CloudProviderRegistration.AcaCredentialKey, credential));
    }

    [Fact]
    public async Task Execute_PythonInPerRunSession_WithFilesEnvAndManagedIdentityToken()
    {
        var credential = new FakeCredential(AcaStandIn.Token);
        await using var sp = Build(credential);
        var aca = sp.GetRequiredService<AcaProvider>();
        var lease = await aca.ProvisionAsync(ProviderHarness.Request(), default);
        var spec = ProviderHarness.Spec("import os\nprint(open('in.csv').read(), os.environ['MODE'])\nopen('out.txt','w').write('made')",
            files: new Dictionary<string, string> { ["in.csv"] = "a,b" }, env: new Dictionary<string, string> { ["MODE"] = "test" });
        var result = await aca.ExecuteAsync(lease, spec, default);
        var produced = await aca.DownloadAsync(lease, "out.txt", default);
        await aca.ReleaseAsync(lease, default);
        await aca.ReleaseAsync(lease, default);

        Assert.Equal("a,b test\n", result.Stdout);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("made", Encoding.UTF8.GetString(produced));
        Assert.Equal([lease.SandboxId], _standIn.Sessions);
        Assert.Equal(["https://dynamicsessions.io/.default"], credential.Scopes.Distinct());
        // Billed per session: the run's seconds plus the cooldown, at the session-hour price.
        var seconds = Math.Ceiling(result.WallTimeMs / 1000.0 + 300);
        Assert.Equal(Math.Round((decimal)(seconds * 0.03 / 3600), 8), ((ISandboxProvider)aca).ComputeCost(lease, spec, result));
        Assert.Equal(new RuntimeOffer("hyperv", IsolationLevel.Maximum), aca.Capabilities.Runtimes.Single());
        Assert.Equal([Languages.Python], aca.Capabilities.Languages);
    }

    [Theory]
    [InlineData(FaultKind.Refuse, Expect.NeverStarted, 0)]
    [InlineData(FaultKind.Reset, Expect.Interrupted, 0)]
    [InlineData(FaultKind.Hang, Expect.TimedOut, 0)]
    [InlineData(FaultKind.DropAfter, Expect.Interrupted, 1)]
    [InlineData(FaultKind.HangAfter, Expect.TimedOut, 1)]
    public async Task Execute_FaultAtStart_RunsTheCodeAtMostOnce(FaultKind kind, Expect expect, int executions)
    {
        await using var sp = Build(new FakeCredential(AcaStandIn.Token), faulty: true);
        var request = ProviderHarness.Request();
        _standIn.Faults.At(CloudStep.Start, kind);

        // Synchronous and without a handle to the execution: a lost answer is final, a missed deadline is a timeout.
        var run = await ProviderHarness.RunOnceAsync(sp.GetRequiredService<AcaProvider>(), request, ExactlyOnce.QuickSpec());

        // Sessions have no delete: the run's one session (if the call got that far) stays until the pool's cooldown ends it.
        ExactlyOnce.Check(run, expect, _standIn, request.RunId, executions, released: false);
        Assert.Equal(executions, _standIn.LiveFor(request.RunId));
        Assert.Equal(1, _standIn.Faults.Calls("execute"));
    }

    [Fact]
    public async Task Execute_StartRefusedWith429_IsNeverStartedAndTransient()
    {
        await using var sp = Build(new FakeCredential(AcaStandIn.Token), faulty: true);
        var request = ProviderHarness.Request();
        _standIn.Faults.At(CloudStep.Start, Fault.Http(429, """{"error":{"code":"TooManyRequests","message":"session pool busy"}}"""));

        var run = await ProviderHarness.RunOnceAsync(sp.GetRequiredService<AcaProvider>(), request, ExactlyOnce.QuickSpec());

        ExactlyOnce.Check(run, Expect.NeverStarted, _standIn, request.RunId, executions: 0, released: false);
        Assert.True(run.ExecuteError!.Transient);
    }

    [Fact]
    public async Task Provision_Retried_NamesTheSameSession()
    {
        await using var sp = Build(new FakeCredential(AcaStandIn.Token));
        var aca = sp.GetRequiredService<AcaProvider>();
        var request = ProviderHarness.Request();

        var first = await aca.ProvisionAsync(request, default);
        var second = await aca.ProvisionAsync(request, default);
        await aca.ExecuteAsync(second, ProviderHarness.Spec("print(1)"), default);

        Assert.Equal(first.SandboxId, second.SandboxId);
        Assert.Equal("sandstorm-" + request.RunId, second.SandboxId);
        Assert.Equal(1, _standIn.LiveFor(request.RunId));
        Assert.Equal(1, _standIn.Live);
    }

    [Fact]
    public async Task Execute_FailingCode_ReportsFailureAsExitCodeOne()
    {
        await using var sp = Build(new FakeCredential(AcaStandIn.Token));
        var aca = sp.GetRequiredService<AcaProvider>();
        var lease = await aca.ProvisionAsync(ProviderHarness.Request(), default);

        var result = await aca.ExecuteAsync(lease, ProviderHarness.Spec("raise ValueError('nope')"), default);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("ValueError: nope", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Upload_503WithRetryAfter_IsRetried_ButExecute500IsNot()
    {
        await using var sp = Build(new FakeCredential(AcaStandIn.Token));
        var aca = sp.GetRequiredService<AcaProvider>();
        var lease = await aca.ProvisionAsync(ProviderHarness.Request(), default);
        _standIn.Faults.Add("upload", Fault.Http(503, retryAfter: 0));
        _standIn.Faults.Add("execute", Fault.Http(500, """{"error":{"code":"InternalError","message":"session crashed"}}"""));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => aca.ExecuteAsync(lease, ProviderHarness.Spec("print(1)", files: new Dictionary<string, string> { ["f"] = "x" }), default));

        Assert.Equal(2, _standIn.Faults.Calls("upload"));
        Assert.Equal(1, _standIn.Faults.Calls("execute"));
        // A 500 after the code may have started: final, with the provider's reason kept.
        Assert.Equal(CloudErrorCodes.ExecutionInterrupted, ex.Code);
        Assert.False(ex.Transient);
        Assert.False(ex.NeverStarted);
        Assert.Contains("session crashed", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Execute_WrongToken_IsUnauthorized()
    {
        await using var sp = Build(new FakeCredential("stale"));
        var aca = sp.GetRequiredService<AcaProvider>();
        var lease = await aca.ProvisionAsync(ProviderHarness.Request(), default);

        var ex = await Assert.ThrowsAsync<ProviderException>(() => aca.ExecuteAsync(lease, ProviderHarness.Spec("print(1)"), default));

        Assert.Equal(CloudErrorCodes.Unauthorized, ex.Code);
        Assert.False(ex.Transient);
    }

    [Fact]
    public async Task Provision_NonPython_IsNotSupported()
    {
        await using var sp = Build(new FakeCredential(AcaStandIn.Token));

        var ex = await Assert.ThrowsAsync<ProviderException>(() => sp.GetRequiredService<AcaProvider>().ProvisionAsync(ProviderHarness.Request(Languages.JavaScript), default));

        Assert.Equal(Core.Errors.ErrorCodes.NotSupported, ex.Code);
    }

    /// <summary>Stands in for a managed identity: hands out a fixed token and records the scopes asked for.</summary>
    private sealed class FakeCredential(string token) : TokenCredential
    {
        public List<string> Scopes { get; } = [];

        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
        {
            Scopes.AddRange(requestContext.Scopes);
            return new AccessToken(token, DateTimeOffset.UtcNow.AddHours(1));
        }

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            ValueTask.FromResult(GetToken(requestContext, cancellationToken));
    }
}
