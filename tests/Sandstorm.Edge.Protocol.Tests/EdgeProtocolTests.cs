using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Edge.Agent;
using Sandstorm.Storage.Edge;
using Sandstorm.Testing;

namespace Sandstorm.Edge.Protocol.Tests;

/// <summary>The edge protocol end to end: real control plane (Kestrel + durable engine + Azurite), real agent loop, real bwrap.</summary>
public sealed partial class EdgeProtocolTests(ControlPlaneFixture fixture) : IClassFixture<ControlPlaneFixture>
{
    private ControlPlaneHost Host => fixture.Host;

    private const string Sleeper = "import time\nprint('started', flush=True)\ntime.sleep(4)\nprint('done')";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task StandardRun_ExecutesOnAgent_UnderBwrapWithTelemetry()
    {
        var host = Host;
        var a = await host.CreateTenantAsync("a");
        await using var agent = await StartAgentAsync(host, a.Key, "a1");

        var runId = await host.SubmitAsync(a.Key, "import sys\nprint('edge says hi', sys.version_info[0])");
        var run = await host.WaitRunAsync(a.Key, runId);

        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal("edge", run.Provider);
        Assert.Equal("bwrap", run.Runtime);
        Assert.Equal("edge says hi 3\n", run.Stdout);
        var job = (await host.JobAsync(a.Id, runId))!;
        Assert.Equal((EdgeJobState.Completed, 1, 1, agent.AgentId), (job.State, job.Attempts, job.EventsRaised, job.CompletedBy));

        // Run metrics arrive as telemetry, in batches through the outbox.
        var telemetry = host.Services.GetRequiredService<EdgeTelemetryStore>();
        var events = await Poll.UntilAsync(
            () => telemetry.ListForJobAsync(a.Id, job.JobId, CancellationToken.None),
            e => e.Any(x => x.Kind == "job-finished"),
            Deadline,
            "the job-finished event");
        var finished = events.Single(e => e.Kind == "job-finished");
        Assert.Equal("bwrap", finished.Data!["runtime"]);
        Assert.Equal("0", finished.Data["exitCode"]);
    }

    [Fact]
    public async Task AgentStoppedMidJob_JobRedispatchedToSecondAgent()
    {
        var host = Host;
        var a = await host.CreateTenantAsync("a");
        await using var first = await StartAgentAsync(host, a.Key, "first");
        var runId = await host.SubmitAsync(a.Key, Sleeper);
        await WaitRunningOnAsync(host, runId, first);

        await first.StopAsync();
        await using var second = await StartAgentAsync(host, a.Key, "second");
        var run = await host.WaitRunAsync(a.Key, runId);

        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal("started\ndone\n", run.Stdout);
        var job = (await host.JobAsync(a.Id, runId))!;
        Assert.Equal(2, job.Attempts);
        Assert.Equal([first.AgentId, second.AgentId], job.Agents);
        Assert.Equal(second.AgentId, job.CompletedBy);
        Assert.Equal(1, job.EventsRaised);
    }

    [Fact]
    public async Task AgentStoppedMidJob_NoOtherAgent_RunFailsWithReason()
    {
        var host = Host;
        var a = await host.CreateTenantAsync("a");
        await using var only = await StartAgentAsync(host, a.Key, "only");
        var runId = await host.SubmitAsync(a.Key, Sleeper);
        await WaitRunningOnAsync(host, runId, only);

        await only.StopAsync();
        var run = await host.WaitRunAsync(a.Key, runId);

        Assert.Equal(RunStatus.Failed, run.Status);
        Assert.Equal(ErrorCodes.EdgeAgentLost, run.Error!.Code);
        Assert.Contains($"edge agent {only.AgentId} stopped heartbeating", run.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ControlPlaneUnreachable_ResultKeptOnDisk_DeliveredAndAppliedOnceAfterReconnect()
    {
        // The outage (down while a 1 s job runs) is shorter than the agent timeout: a network blip, not a dead agent.
        var host = Host;
        var a = await host.CreateTenantAsync("a");
        await using var agent = await StartAgentAsync(host, a.Key, "vpc");
        var runId = await host.SubmitAsync(a.Key, "import time\ntime.sleep(1)\nprint('late but whole')");
        await WaitRunningOnAsync(host, runId, agent);

        agent.Network.Mode = NetworkSwitch.State.Down;
        var pending = await Poll.UntilAsync(
            () => Task.FromResult(agent.Agent.Outbox.Pending()),
            items => items.Any(i => i.Kind == Outbox.ResultKind),
            Deadline,
            "the result to land in the outbox");
        var stored = pending.Single(i => i.Kind == Outbox.ResultKind);
        Assert.Contains("late but whole", await File.ReadAllTextAsync(stored.Path), StringComparison.Ordinal);
        Assert.Equal(RunStatus.Running, (await host.GetRunAsync(a.Key, runId)).Status);

        // The link comes back but drops answers: the result is applied while the agent still believes it failed.
        agent.Network.Mode = NetworkSwitch.State.LoseResponses;
        await Poll.UntilAsync(() => host.JobAsync(a.Id, runId), j => j!.State == EdgeJobState.Completed, Deadline, "the result to be applied");
        Assert.True(File.Exists(stored.Path), "an unacknowledged result must stay in the outbox");

        agent.Network.Mode = NetworkSwitch.State.Up;
        await Poll.UntilAsync(() => Task.FromResult(File.Exists(stored.Path)), exists => !exists, Deadline, "the outbox to be acknowledged");
        var run = await host.WaitRunAsync(a.Key, runId);

        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal("late but whole\n", run.Stdout);
        var job = (await host.JobAsync(a.Id, runId))!;
        Assert.True(job.Deliveries >= 2, $"expected the result re-delivered, got {job.Deliveries}: {string.Join("; ", agent.Network.Log.Where(l => l.Contains("/result", StringComparison.Ordinal)))}");
        Assert.Equal(1, job.EventsRaised);
    }

    [Fact]
    public async Task DuplicateResultPost_AcknowledgedWithoutSecondEvent()
    {
        var host = Host;
        var a = await host.CreateTenantAsync("a");
        await using var agent = await StartAgentAsync(host, a.Key, "dup");
        var runId = await host.SubmitAsync(a.Key, "print('original')");
        var before = await host.WaitRunAsync(a.Key, runId);
        Assert.Equal(RunStatus.Succeeded, before.Status);
        var jobId = Providers.Edge.EdgeProvider.JobIdOf(runId);

        using var http = host.Client(agent.Config.AgentToken);
        var forged = new EdgeJobResult { JobId = jobId, Result = new ExecutionResult { Runtime = "bwrap", Stdout = "tampered\n", ExitCode = 1 } };
        using var response = await http.PostAsJsonAsync($"v1/edge/agents/{agent.AgentId}/jobs/{jobId}/result", forged, SandstormJson.Options);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.False((await response.Content.ReadFromJsonAsync<EdgeJobResultAck>(SandstormJson.Options))!.Applied);
        var job = (await host.JobAsync(a.Id, runId))!;
        Assert.Equal((1, 2), (job.EventsRaised, job.Deliveries));
        var after = await host.GetRunAsync(a.Key, runId);
        Assert.Equal((RunStatus.Succeeded, "original\n", before.CompletedAt), (after.Status, after.Stdout, after.CompletedAt));
    }

    [Fact]
    public async Task OtherTenantsAgent_CannotReachJobsOrAgentsOfTenant()
    {
        var host = Host;
        var a = await host.CreateTenantAsync("a");
        await using var agentA = await StartAgentAsync(host, a.Key, "a");
        var b = await host.CreateTenantAsync("b");
        await using var agentB = await AgentHarness.EnrollAsync(host, b.Key, "b");
        var runId = await host.SubmitAsync(a.Key, Sleeper);
        await WaitRunningOnAsync(host, runId, agentA);
        var jobId = Providers.Edge.EdgeProvider.JobIdOf(runId);
        using var asB = host.Client(agentB.Config.AgentToken);

        // B's token on A's agent routes: forbidden.
        using (var poll = await asB.GetAsync($"v1/edge/agents/{agentA.AgentId}/jobs?wait=0"))
        {
            await AssertProblemAsync(poll, HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
        }

        var result = new EdgeJobResult { JobId = jobId, Result = new ExecutionResult { Runtime = "bwrap", Stdout = "forged" } };
        using (var post = await asB.PostAsJsonAsync($"v1/edge/agents/{agentA.AgentId}/jobs/{jobId}/result", result, SandstormJson.Options))
        {
            await AssertProblemAsync(post, HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
        }

        // B's token on its own routes: A's job does not exist for it, and its polls never see it.
        using (var post = await asB.PostAsJsonAsync($"v1/edge/agents/{agentB.AgentId}/jobs/{jobId}/result", result, SandstormJson.Options))
        {
            await AssertProblemAsync(post, HttpStatusCode.NotFound, ErrorCodes.NotFound);
        }

        var batch = await asB.GetFromJsonAsync<EdgeJobBatch>($"v1/edge/agents/{agentB.AgentId}/jobs?wait=0&max=32", SandstormJson.Options);
        Assert.Empty(batch!.Jobs);

        // Tenant B sees no edge capacity from A's agent; an unknown token is refused.
        Assert.False(await host.EdgeLiveAsync(b.Key));
        using var stranger = host.Client("eat_not-a-real-token");
        using (var hb = await stranger.PostAsJsonAsync($"v1/edge/agents/{agentA.AgentId}/heartbeat", new EdgeHeartbeat { Runtimes = [] }, SandstormJson.Options))
        {
            await AssertProblemAsync(hb, HttpStatusCode.Unauthorized, ErrorCodes.Unauthorized);
        }

        var run = await host.WaitRunAsync(a.Key, runId);
        Assert.Equal((RunStatus.Succeeded, "started\ndone\n"), (run.Status, run.Stdout));
    }

    [Fact]
    public async Task ExpiredEnrollmentToken_Returns401ProblemJson_AndEnrolsNothing()
    {
        var host = Host;
        var a = await host.CreateTenantAsync("a");
        var tokens = host.Services.GetRequiredService<EdgeEnrollmentTokenStore>();
        var (expired, _) = await tokens.CreateAsync(a.Id, null, DateTimeOffset.UtcNow.AddSeconds(-1), maxUses: 1, CancellationToken.None);

        using var http = host.Client(expired);
        using var response = await http.PostAsJsonAsync("v1/edge/agents", new EdgeEnrollRequest { Name = "late" }, SandstormJson.Options);

        await AssertProblemAsync(response, HttpStatusCode.Unauthorized, ErrorCodes.TokenExpired);
        var agents = host.Services.GetRequiredService<EdgeAgentStore>();
        Assert.Empty(await agents.ListAsync(a.Id, CancellationToken.None));

        // Neighbouring refusals keep their own stable types.
        using var unknown = host.Client("set_never-issued");
        using (var r = await unknown.PostAsJsonAsync("v1/edge/agents", new EdgeEnrollRequest { Name = "x" }, SandstormJson.Options))
        {
            await AssertProblemAsync(r, HttpStatusCode.Unauthorized, ErrorCodes.Unauthorized);
        }

        using var tenant = host.Client(a.Key);
        using (var r = await tenant.PostAsJsonAsync("v1/edge/enrollment-tokens", new EdgeEnrollmentTokenRequest { TtlMinutes = 0 }, SandstormJson.Options))
        {
            await AssertProblemAsync(r, HttpStatusCode.BadRequest, ErrorCodes.ValidationFailed);
        }
    }

    [Fact]
    public async Task CancelledRun_AgentKillsSandbox_AndReportsCancelled()
    {
        // The code would sleep far past every deadline below: only a cancel that reaches the agent ends it in time.
        var host = Host;
        var a = await host.CreateTenantAsync("a");
        await using var agent = await StartAgentAsync(host, a.Key, "cancel");
        var runId = await host.SubmitAsync(a.Key, "import time\nprint('started', flush=True)\ntime.sleep(600)", timeoutMs: 900_000);
        await WaitRunningOnAsync(host, runId, agent);

        await host.CancelAsync(a.Key, runId);
        var run = await host.WaitRunAsync(a.Key, runId);
        Assert.Equal(RunStatus.Cancelled, run.Status);

        // The next heartbeat's answer names the job; the agent kills the sandbox and posts a `cancelled` result.
        await Poll.UntilAsync(() => Task.FromResult(agent.Agent.Running), n => n == 0, Deadline, "the agent to kill the cancelled job");
        var job = await Poll.UntilAsync(() => host.JobAsync(a.Id, runId), j => j!.Deliveries == 1, Deadline, "the cancelled result to be posted");
        Assert.Equal((EdgeJobState.Cancelled, "released", 0), (job!.State, job.CompletedBy, job.EventsRaised));
        await Poll.UntilAsync(
            () => Task.FromResult(agent.Agent.Outbox.Pending().Any(i => i.Kind == Outbox.ResultKind)),
            pending => !pending,
            Deadline,
            "the cancelled result to be acknowledged");

        var telemetry = host.Services.GetRequiredService<EdgeTelemetryStore>();
        var events = await Poll.UntilAsync(
            () => telemetry.ListForJobAsync(a.Id, job.JobId, CancellationToken.None),
            e => e.Any(x => x.Kind == "job-cancelled"),
            Deadline,
            "the job-cancelled event");
        Assert.DoesNotContain(events, e => e.Kind == "job-finished");
        Assert.Equal(RunStatus.Cancelled, (await host.GetRunAsync(a.Key, runId)).Status);
    }

    [Fact]
    public async Task LostPollAnswer_LeaseExpires_JobOfferedAgainAndRunOnce()
    {
        var host = Host;
        var a = await host.CreateTenantAsync("a");
        await using var agent = await StartAgentAsync(host, a.Key, "lossy");
        agent.Network.LoseNextJobOffer = true;

        var runId = await host.SubmitAsync(a.Key, "print('second offer')");

        // The first lease happened on the control plane, but its answer was lost: the agent never ran the job.
        await Poll.UntilAsync(() => Task.FromResult(agent.Network.LoseNextJobOffer), lose => !lose, Deadline, "the job offer to be lost");
        var run = await host.WaitRunAsync(a.Key, runId);

        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal("second offer\n", run.Stdout);
        var job = (await host.JobAsync(a.Id, runId))!;
        Assert.Equal((EdgeJobState.Completed, 2, 1, agent.AgentId), (job.State, job.Attempts, job.EventsRaised, job.CompletedBy));
        Assert.Contains(agent.Network.Log, l => l.StartsWith("lost job offer", StringComparison.Ordinal));

        var telemetry = host.Services.GetRequiredService<EdgeTelemetryStore>();
        var events = await Poll.UntilAsync(
            () => telemetry.ListForJobAsync(a.Id, job.JobId, CancellationToken.None),
            e => e.Any(x => x.Kind == "job-finished"),
            Deadline,
            "the job-finished event");
        Assert.Single(events, e => e.Kind == "job-started");
    }

    [Fact]
    public async Task JobOfferedAgainWhileRunning_IsNotRunTwice()
    {
        // As if a heartbeat listing the job had been late: the control plane queues the running job for the agent again.
        var host = Host;
        var a = await host.CreateTenantAsync("a");
        await using var agent = await StartAgentAsync(host, a.Key, "again");
        var runId = await host.SubmitAsync(a.Key, "import time\nprint('started', flush=True)\ntime.sleep(10)\nprint('done')");
        await WaitRunningOnAsync(host, runId, agent);

        var jobs = host.Services.GetRequiredService<EdgeJobStore>();
        var leased = (await host.JobAsync(a.Id, runId))!;
        Assert.NotNull(await jobs.TryUpdateAsync(leased with { State = EdgeJobState.Queued, LeasedAt = null }, CancellationToken.None));
        host.Services.GetRequiredService<Providers.Edge.EdgeJobSignal>().Notify(a.Id, agent.AgentId);
        await Poll.UntilAsync(() => host.JobAsync(a.Id, runId), j => j!.Attempts == 2 || j.State == EdgeJobState.Completed, Deadline, "the job to be leased again");
        var run = await host.WaitRunAsync(a.Key, runId);

        Assert.Equal((RunStatus.Succeeded, "started\ndone\n"), (run.Status, run.Stdout));
        var job = (await host.JobAsync(a.Id, runId))!;
        Assert.Equal((2, 1, 1), (job.Attempts, job.Deliveries, job.EventsRaised));
        var telemetry = host.Services.GetRequiredService<EdgeTelemetryStore>();
        var events = await Poll.UntilAsync(
            () => telemetry.ListForJobAsync(a.Id, job.JobId, CancellationToken.None),
            e => e.Any(x => x.Kind == "job-finished") && e.Any(x => x.Kind == "job-offer-ignored"),
            Deadline,
            "the job-finished and job-offer-ignored events");
        Assert.Single(events, e => e.Kind == "job-started");
    }

    private static async Task<AgentHarness> StartAgentAsync(ControlPlaneHost host, string apiKey, string name)
    {
        var agent = await AgentHarness.EnrollAsync(host, apiKey, name);
        agent.Start();
        await Poll.UntilAsync(() => host.EdgeLiveAsync(apiKey), live => live, Deadline, $"agent {name} to be live");
        return agent;
    }

    // The job is leased by the agent and its sandbox is running.
    private static async Task WaitRunningOnAsync(ControlPlaneHost host, string runId, AgentHarness agent)
    {
        await Poll.UntilAsync(
            () => host.JobAsync(agent.Config.TenantId, runId),
            j => j is { State: EdgeJobState.Leased } && j.AgentId == agent.AgentId,
            Deadline,
            $"run {runId} to be leased by {agent.Config.Name}");
        await Poll.UntilAsync(() => Task.FromResult(agent.Agent.Running), n => n == 1, Deadline, "the job to start on the agent");
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(ErrorCodes.TypeUri(code), doc.RootElement.GetProperty("type").GetString());
    }
}
