using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Providers;
using Sandstorm.Storage;
using Sandstorm.Testing;

namespace Sandstorm.Orchestrations.Tests;

[Collection(AzuriteCollection.Name)]
public sealed class SandboxRunOrchestratorTests(AzuriteFixture azurite)
{
    private static RunRequest Python(string code, IsolationLevel level = IsolationLevel.None, int timeoutMs = 10_000) =>
        new() { Code = code, Language = Languages.Python, IsolationLevel = level, Timeout = timeoutMs };

    /// <summary>A standard run kept off this machine's own sandboxes, for the scripted stand-ins of a cloud.</summary>
    private static RunRequest Scripted(int timeoutMs = 10_000) =>
        Python("print(1)", IsolationLevel.Standard, timeoutMs) with { Constraints = new RunConstraints { ExcludeProviders = ["local"] } };

    [Fact]
    public async Task Run_HappyPath_SucceedsWithOutputAndOneLedgerRow()
    {
        await using var host = await PipelineHost.StartAsync(azurite);
        var input = await host.StartRunAsync(Python("print('hello from the pipeline')"));

        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.Succeeded, outcome.Status);
        var record = await host.RecordAsync(input);
        Assert.NotNull(record);
        Assert.Equal(RunStatus.Succeeded, record.Status);
        Assert.Equal("hello from the pipeline\n", record.Stdout!.Inline);
        Assert.Equal("local", record.Result!.Provider);
        Assert.Equal(0, record.Result.ExitCode);
        Assert.Equal("local/process/local", record.Result.Route!.Chosen.Key);
        var ledger = await host.LedgerAsync(input);
        Assert.NotNull(ledger);
        Assert.Equal(record.Result.Cost!.Total, ledger.Total);
        Assert.Equal(0, record.Result.Provenance!.LogIndex);
    }

    [Fact]
    public async Task Run_LargeOutput_TravelsByBlobReference()
    {
        await using var host = await PipelineHost.StartAsync(azurite);
        var input = await host.StartRunAsync(Python("print('x' * 100000)"));

        await host.CompleteAsync(input);

        var record = await host.RecordAsync(input);
        Assert.Null(record!.Stdout!.Inline);
        Assert.NotNull(record.Stdout.BlobName);
        var text = await host.Services.GetRequiredService<PayloadStore>().GetAsync(record.Stdout, CancellationToken.None);
        Assert.Equal(100_001, text.Length);
    }

    [Fact]
    public async Task Run_StandardIsolationOnLocalOnly_RunsInABwrapSandbox()
    {
        await using var host = await PipelineHost.StartAsync(azurite);
        var input = await host.StartRunAsync(Python("import os, socket; print(os.getuid(), socket.gethostname())", IsolationLevel.Standard));

        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.Succeeded, outcome.Status);
        var record = await host.RecordAsync(input);
        Assert.Equal("local/bwrap/local", record!.Result!.Route!.Chosen.Key);
        Assert.Equal("bwrap", record.Result.Runtime);
        Assert.Equal("65534 sandbox\n", record.Stdout!.Inline);
    }

    [Fact]
    public async Task Run_MaximumIsolationOnLocalOnly_FailsNamingTheLevel()
    {
        await using var host = await PipelineHost.StartAsync(azurite);
        var input = await host.StartRunAsync(Python("print(1)", IsolationLevel.Maximum));

        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.Failed, outcome.Status);
        Assert.Equal(ErrorCodes.IsolationUnavailable, outcome.Error!.Code);
        Assert.Contains("'maximum'", outcome.Error.Message);
        Assert.Null(await host.LedgerAsync(input));
    }

    [Fact]
    public async Task Run_ProvisionFailsOnFirstCandidate_FailsOverToNext()
    {
        var cheap = new ScriptedProvider("cheap", 0.00001) { FailProvision = true };
        var dear = new ScriptedProvider("dear", 0.00002);
        await using var host = await PipelineHost.StartAsync(azurite, s =>
        {
            s.AddSingleton<ISandboxProvider>(cheap);
            s.AddSingleton<ISandboxProvider>(dear);
        });
        var input = await host.StartRunAsync(Scripted());

        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.Succeeded, outcome.Status);
        var record = await host.RecordAsync(input);
        Assert.Equal("dear", record!.Result!.Provider);
        Assert.Equal("ran on dear\n", record.Stdout!.Inline);
        Assert.Equal("cheap", record.Result.Route!.Chosen.Provider);
        Assert.Contains(input.RunId, dear.Provisioned);
        Assert.Contains("sbx-" + input.RunId, dear.Released);
        Assert.Equal("dear", (await host.LedgerAsync(input))!.Provider);
    }

    [Fact]
    public async Task Run_EveryCandidateFailsToProvision_FailsWithEachReason()
    {
        var a = new ScriptedProvider("a", 0.00001) { FailProvision = true };
        var b = new ScriptedProvider("b", 0.00002) { FailProvision = true };
        await using var host = await PipelineHost.StartAsync(azurite, s =>
        {
            s.AddSingleton<ISandboxProvider>(a);
            s.AddSingleton<ISandboxProvider>(b);
        });
        var input = await host.StartRunAsync(Scripted());

        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.Failed, outcome.Status);
        Assert.Equal(ErrorCodes.ProvisionFailed, outcome.Error!.Code);
        Assert.Contains("a/scripted/test", outcome.Error.Message);
        Assert.Contains("b/scripted/test", outcome.Error.Message);
        Assert.Null(await host.LedgerAsync(input));
    }

    [Fact]
    public async Task Run_CodeRunsPastItsTimeout_IsTimedOutAndBilled()
    {
        // The runtime's own timeout ends the code, not the orchestration's deadline (which a loaded machine could reach first).
        await using var host = await PipelineHost.StartAsync(azurite, overhead: TimeSpan.FromMinutes(2));
        var input = await host.StartRunAsync(Python("import time\ntime.sleep(600)", timeoutMs: 1_000));

        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.TimedOut, outcome.Status);
        var record = await host.RecordAsync(input);
        Assert.Equal(ErrorCodes.RunTimedOut, record!.Result!.Error!.Code);
        Assert.True(record.Result.Duration < 300_000, $"the code was stopped at its timeout, long before its sleep would end (duration {record.Result.Duration}, {record.Result.Error.Message})");
        Assert.NotNull(await host.LedgerAsync(input));
    }

    [Fact]
    public async Task Run_ProviderHangsPastTheDeadline_DurableTimerEndsItAndReleasesTheSandbox()
    {
        var hanging = new ScriptedProvider("hanging", 0.00001) { HangExecution = true };
        await using var host = await PipelineHost.StartAsync(azurite, s => s.AddSingleton<ISandboxProvider>(hanging));
        var input = await host.StartRunAsync(Scripted(timeoutMs: 1_000));

        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.TimedOut, outcome.Status);
        Assert.Contains("deadline", outcome.Error!.Message);
        Assert.Contains("sbx-" + input.RunId, hanging.Released);
    }

    [Fact]
    public async Task Run_CancelledWhileExecuting_IsCancelledAndReleased()
    {
        var hanging = new ScriptedProvider("hanging", 0.00001) { HangExecution = true };
        await using var host = await PipelineHost.StartAsync(azurite, s => s.AddSingleton<ISandboxProvider>(hanging));
        var input = await host.StartRunAsync(Scripted(timeoutMs: 60_000));
        await Poll.UntilAsync(() => Task.FromResult(hanging.Provisioned.Contains(input.RunId)), p => p, TimeSpan.FromSeconds(30), "provisioning");

        await host.Client.RaiseEventAsync(input.RunId, RunEvents.Cancel, "test");
        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.Cancelled, outcome.Status);
        Assert.Equal(ErrorCodes.Cancelled, outcome.Error!.Code);
        Assert.Contains("sbx-" + input.RunId, hanging.Released);
        Assert.Equal(RunStatus.Cancelled, (await host.RecordAsync(input))!.Status);
    }

    [Fact]
    public async Task Run_ExecutionTimesOutAfterTheCodeMayHaveStarted_FailsWithoutRunningItAgain()
    {
        var flaky = new ScriptedProvider("flaky", 0.00001);
        flaky.ExecuteFailures.Enqueue(false);
        await using var host = await PipelineHost.StartAsync(azurite, s => s.AddSingleton<ISandboxProvider>(flaky));
        var input = await host.StartRunAsync(Scripted());

        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.Failed, outcome.Status);
        Assert.Contains("timed out while the process was starting", outcome.Error!.Message);
        Assert.Equal(1, flaky.ExecuteCalls);
        Assert.Equal(1, flaky.CodeRuns);
        Assert.Contains("sbx-" + input.RunId, flaky.Released);
        Assert.NotNull(await host.LedgerAsync(input));
    }

    [Fact]
    public async Task Run_ExecutionThatNeverStarted_IsTriedAgainAndRunsOnce()
    {
        var flaky = new ScriptedProvider("flaky", 0.00001);
        flaky.ExecuteFailures.Enqueue(true);
        await using var host = await PipelineHost.StartAsync(azurite, s => s.AddSingleton<ISandboxProvider>(flaky));
        var input = await host.StartRunAsync(Scripted());

        var outcome = await host.CompleteAsync(input);

        Assert.Equal(RunStatus.Succeeded, outcome.Status);
        Assert.Equal(2, flaky.ExecuteCalls);
        Assert.Equal(1, flaky.CodeRuns);
    }

    [Fact]
    public async Task Run_SettleFailsAfterBilling_IsRetriedWithoutASecondLedgerRow()
    {
        var fault = new OnceFault(FaultPoints.SettleAfterLedger);
        await using var host = await PipelineHost.StartAsync(azurite, s => s.AddSingleton<IFaultInjector>(fault));
        var input = await host.StartRunAsync(Python("print(42)"));

        var outcome = await host.CompleteAsync(input);

        Assert.Equal(1, fault.Hits);
        Assert.Equal(RunStatus.Succeeded, outcome.Status);
        var ledger = host.Services.GetRequiredService<LedgerStore>();
        var rows = new List<LedgerEntry>();
        await foreach (var row in ledger.QueryAsync(input.TenantId, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(1), CancellationToken.None))
        {
            rows.Add(row);
        }

        Assert.Single(rows);
        Assert.Equal(outcome.TotalCost, rows[0].Total);
    }
}
