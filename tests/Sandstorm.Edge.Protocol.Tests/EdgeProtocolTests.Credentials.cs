using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Edge.Agent;
using Sandstorm.Storage;
using Sandstorm.Storage.Edge;
using Sandstorm.Testing;

namespace Sandstorm.Edge.Protocol.Tests;

/// <summary>
/// Who may settle a job: only the agent holding its lease, and only with a result at (or above) the job's isolation; the
/// isolation it really ran under is what the run's provenance attests. The agents here are spoken by hand over HTTP
/// (<see cref="RawAgent"/>) so a test decides what each one posts.
/// </summary>
public sealed partial class EdgeProtocolTests
{
    [Fact]
    public async Task ResultFromAgentThatLostTheLease_Is409AndChangesNothing_TheNewHoldersResultIsApplied()
    {
        var host = Host;
        var a = await host.CreateTenantAsync("lease");
        await using var first = await RawAgent.EnrollAsync(host, a.Key, "first");
        await Poll.UntilAsync(() => host.EdgeLiveAsync(a.Key), live => live, Deadline, "the first agent to be live");
        var runId = await host.SubmitAsync(a.Key, "print('x')");
        var jobId = (await first.LeaseAsync(Deadline)).JobId;

        // The first agent goes silent: its lease lapses and the job goes to the second.
        await using var second = await RawAgent.EnrollAsync(host, a.Key, "second");
        await first.StopHeartbeatsAsync();
        await Poll.UntilAsync(() => host.JobAsync(a.Id, runId), j => j!.AgentId == second.AgentId, Deadline, "the job to go to the second agent");
        Assert.Equal(jobId, (await second.LeaseAsync(Deadline)).JobId);

        using (var late = await first.PostResultAsync(RawAgent.Result(jobId, "bwrap", IsolationLevel.Standard, "from first")))
        {
            await AssertProblemAsync(late, HttpStatusCode.Conflict, ErrorCodes.LeaseLost);
        }

        var untouched = (await host.JobAsync(a.Id, runId))!;
        Assert.Equal((EdgeJobState.Leased, second.AgentId, 0), (untouched.State, untouched.AgentId, untouched.Deliveries));

        using (var accepted = await second.PostResultAsync(RawAgent.Result(jobId, "bwrap", IsolationLevel.Standard, "from second")))
        {
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
            Assert.True((await accepted.Content.ReadFromJsonAsync<EdgeJobResultAck>(SandstormJson.Options))!.Applied);
        }

        var run = await host.WaitRunAsync(a.Key, runId);
        Assert.Equal((RunStatus.Succeeded, "from second\n"), (run.Status, run.Stdout));

        // Settled by the second agent: the first one's result is still refused, and still changes nothing.
        using (var later = await first.PostResultAsync(RawAgent.Result(jobId, "bwrap", IsolationLevel.Standard, "from first")))
        {
            await AssertProblemAsync(later, HttpStatusCode.Conflict, ErrorCodes.LeaseLost);
        }

        var job = (await host.JobAsync(a.Id, runId))!;
        Assert.Equal((second.AgentId, 1, 1), (job.CompletedBy, job.EventsRaised, job.Deliveries));
        Assert.Equal("from second\n", (await host.GetRunAsync(a.Key, runId)).Stdout);
    }

    [Theory]
    [InlineData("process", IsolationLevel.Standard)] // a runtime the control plane knows gives none, claimed as standard
    [InlineData("bwrap", IsolationLevel.None)]
    public async Task ResultBelowTheRequiredIsolation_Is422_RunFailsAndIsNotBilledAsSucceeded(string runtime, IsolationLevel claimed)
    {
        var host = Host;
        var a = await host.CreateTenantAsync("weak");
        await using var agent = await RawAgent.EnrollAsync(host, a.Key, "weak");
        await Poll.UntilAsync(() => host.EdgeLiveAsync(a.Key), live => live, Deadline, "the agent to be live");
        var runId = await host.SubmitAsync(a.Key, "print('x')");
        var jobId = (await agent.LeaseAsync(Deadline)).JobId;

        using (var refused = await agent.PostResultAsync(RawAgent.Result(jobId, runtime, claimed, "ran unsandboxed")))
        {
            await AssertProblemAsync(refused, HttpStatusCode.UnprocessableEntity, ErrorCodes.IsolationBelowRequired);
        }

        var run = await host.WaitRunAsync(a.Key, runId);
        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal(ErrorCodes.IsolationBelowRequired, run.Error!.Code);
        Assert.Contains("below the required 'standard'", run.Error.Message, StringComparison.Ordinal);
        Assert.True(string.IsNullOrEmpty(run.Stdout), "a refused result's output is not the run's");
        var entry = await host.Services.GetRequiredService<LedgerStore>().GetAsync(a.Id, runId, CancellationToken.None);
        Assert.True(entry is null or { Status: RunStatus.Failed, ProviderCost: 0m }, $"billed as {entry?.Status} for {entry?.ProviderCost}");

        // The refusal stands: a re-post is refused again and changes nothing.
        using (var again = await agent.PostResultAsync(RawAgent.Result(jobId, runtime, claimed, "ran unsandboxed")))
        {
            await AssertProblemAsync(again, HttpStatusCode.UnprocessableEntity, ErrorCodes.IsolationBelowRequired);
        }

        Assert.Equal(1, (await host.JobAsync(a.Id, runId))!.EventsRaised);
    }

    [Fact]
    public async Task ResultWithItsIsolation_ProvenanceRecordsTheRuntimeAndIsolationTheAgentReallyUsed()
    {
        var host = Host;
        var a = await host.CreateTenantAsync("prov");
        await using var agent = await RawAgent.EnrollAsync(host, a.Key, "prov");
        await Poll.UntilAsync(() => host.EdgeLiveAsync(a.Key), live => live, Deadline, "the agent to be live");
        var runId = await host.SubmitAsync(a.Key, "print('x')");
        var jobId = (await agent.LeaseAsync(Deadline)).JobId;

        // Stronger than the standard the run asked for: accepted, and attested as what it was.
        using (var posted = await agent.PostResultAsync(RawAgent.Result(jobId, "gvisor", IsolationLevel.Strong, "in gvisor")))
        {
            Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
        }

        var run = await host.WaitRunAsync(a.Key, runId);
        Assert.Equal((RunStatus.Succeeded, "gvisor"), (run.Status, run.Runtime));
        using var http = host.Client(a.Key);
        using var bundle = JsonDocument.Parse(await http.GetStringAsync($"v1/runs/{runId}/provenance"));
        var payload = bundle.RootElement.GetProperty("envelope").GetProperty("payload").GetString()!;
        using var statement = JsonDocument.Parse(Convert.FromBase64String(payload));
        var predicate = statement.RootElement.GetProperty("predicate");
        var execution = predicate.GetProperty("execution");
        Assert.Equal("gvisor", execution.GetProperty("runtime").GetString());
        Assert.Equal("strong", execution.GetProperty("isolationLevel").GetString(), ignoreCase: true);
        Assert.Equal("standard", predicate.GetProperty("request").GetProperty("isolationLevel").GetString(), ignoreCase: true);
    }
}

/// <summary>
/// An edge agent spoken by hand over HTTP, without runtimes: it heartbeats (advertising bwrap, listing the jobs it leased)
/// until stopped, and leases and posts what the test says.
/// </summary>
internal sealed class RawAgent : IAsyncDisposable
{
    private readonly HttpClient _http;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<string> _held = [];
    private Task _heartbeats = Task.CompletedTask;

    private RawAgent(HttpClient http, string agentId)
    {
        _http = http;
        AgentId = agentId;
    }

    public string AgentId { get; }

    public static async Task<RawAgent> EnrollAsync(ControlPlaneHost host, string apiKey, string name)
    {
        var token = await host.EnrollmentTokenAsync(apiKey);
        var enrolled = await ControlPlaneClient.EnrollAsync(host.Url, token, new EdgeEnrollRequest { Name = name }, null, CancellationToken.None);
        var agent = new RawAgent(host.Client(enrolled.AgentToken), enrolled.AgentId);
        await agent.HeartbeatAsync(CancellationToken.None);
        agent._heartbeats = agent.HeartbeatLoopAsync();
        return agent;
    }

    public static EdgeJobResult Result(string jobId, string runtime, IsolationLevel isolation, string stdout) => new()
    {
        JobId = jobId,
        Isolation = isolation,
        Result = new ExecutionResult { Runtime = runtime, Stdout = stdout + "\n", ExitCode = 0, WallTimeMs = 5 },
    };

    /// <summary>Long-polls until a job is leased to this agent; heartbeats list it from then on.</summary>
    public async Task<EdgeJob> LeaseAsync(TimeSpan deadline)
    {
        var batch = await Poll.UntilAsync(
            () => _http.GetFromJsonAsync<EdgeJobBatch>($"v1/edge/agents/{AgentId}/jobs?wait=5&max=1", SandstormJson.Options)!,
            b => b!.Jobs.Count > 0,
            deadline,
            $"a job for {AgentId}");
        var job = batch!.Jobs[0];
        lock (_held)
        {
            _held.Add(job.JobId);
        }

        return job;
    }

    public Task<HttpResponseMessage> PostResultAsync(EdgeJobResult result) =>
        _http.PostAsJsonAsync($"v1/edge/agents/{AgentId}/jobs/{result.JobId}/result", result, SandstormJson.Options);

    /// <summary>The agent goes silent (its token still works).</summary>
    public async Task StopHeartbeatsAsync()
    {
        await _stop.CancelAsync();
        await _heartbeats;
    }

    public async ValueTask DisposeAsync()
    {
        await StopHeartbeatsAsync();
        _http.Dispose();
        _stop.Dispose();
    }

    private async Task HeartbeatLoopAsync()
    {
        // A periodic beat like the real agent's, well inside the control plane's agent timeout.
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(400));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token))
            {
                await HeartbeatAsync(_stop.Token);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task HeartbeatAsync(CancellationToken ct)
    {
        string[] held;
        lock (_held)
        {
            held = [.. _held];
        }

        var heartbeat = new EdgeHeartbeat
        {
            Runtimes = [new EdgeRuntimeStatus("bwrap", IsolationLevel.Standard, Works: true)],
            Cpu = 4,
            MemoryMiB = 8192,
            MaxConcurrency = 4,
            Languages = [Languages.Python],
            Jobs = held,
        };
        using var response = await _http.PostAsJsonAsync($"v1/edge/agents/{AgentId}/heartbeat", heartbeat, SandstormJson.Options, ct);
        response.EnsureSuccessStatusCode();
    }
}
