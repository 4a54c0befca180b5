using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Edge.Agent;
using Sandstorm.Edge.Commands;
using Sandstorm.Runtimes;
using Sandstorm.Testing;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// The agent's side of the link: what it offers (no unisolated runtime unless asked, never as root), what it accepts
/// from a control plane (plain http only on loopback; job ids that are names, not paths; specs it cannot write refused
/// with a result), where its secrets live (outbox and config owner-only, the enrollment token never on a command
/// line). A control plane that misbehaves cannot be made from the real one, so some cases talk to
/// <see cref="ScriptedControlPlane"/>, a stand-in that answers what the case needs.
/// </summary>
public sealed class AgentHardeningTests : IDisposable
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly DirectoryInfo directory = Directory.CreateTempSubdirectory("sandstorm-agent-");
    private readonly StringWriter stdout = new();
    private readonly StringWriter stderr = new();

    [Fact]
    public async Task Agent_StartedWithoutTheFlag_OffersNoUnisolatedRuntime_AndRefusesItsJobs()
    {
        await using var process = new ProcessRuntime(TestRuntimes.Options);
        var plane = new ScriptedControlPlane();
        plane.Offer(Job("job_none", IsolationLevel.None, runtime: null));
        plane.Offer(Job("job_named", IsolationLevel.None, runtime: ProcessRuntime.RuntimeName));
        await RunAgentAsync(plane, new EdgeAgentOptions(), [process, TestRuntimes.Get(BwrapRuntime.RuntimeName)], () => plane.Results.Count >= 2);

        Assert.DoesNotContain(plane.Heartbeats.Last().Runtimes, r => r.Name == ProcessRuntime.RuntimeName);
        Assert.Contains(plane.Heartbeats.Last().Runtimes, r => r.Name == BwrapRuntime.RuntimeName && r.Works);
        foreach (var id in new[] { "job_none", "job_named" })
        {
            var result = plane.Results[id];
            Assert.Null(result.Result);
            Assert.Equal(ErrorCodes.IsolationUnavailable, result.Error!.Code);
        }

        Assert.Equal(0, process.ForkedPythonRuns);
    }

    [Fact]
    public void Agent_AllowedUnisolatedAsRoot_IsRefused()
    {
        Assert.True(Environment.IsPrivilegedProcess, "this case needs root, as the rest of the suite");
        var config = Config("http://127.0.0.1:9");
        var refused = Assert.Throws<InvalidOperationException>(() =>
            new EdgeAgent(config, Path.Combine(directory.FullName, "outbox"), new EdgeAgentOptions { AllowUnisolated = true }, [TestRuntimes.Get(ProcessRuntime.RuntimeName)], TextWriter.Null));
        Assert.Contains("as root", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_AllowUnisolatedAsRoot_IsAUsageError()
    {
        var path = await SaveConfigAsync("http://127.0.0.1:9");
        // Bounded: an agent that started anyway would run until stopped.
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var code = await EdgeCli.RunAsync(["start", "--config", path, "--allow-unisolated"], Context(), bound.Token);

        Assert.Equal(EdgeCli.UsageExitCode, code);
        Assert.Contains("--allow-unisolated runs tenant code as this user; refusing as root", stderr.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://control.example")]
    [InlineData("http://10.1.2.3:7071")]
    [InlineData("http://127.0.0.1.example.com")]
    public async Task Init_PlainHttpToAHostThatIsNotLoopback_IsRefused_AndNothingIsSent(string url)
    {
        var plane = new ScriptedControlPlane();
        var code = await WithEnrollmentTokenAsync("set_secret", () => EdgeCli.RunAsync(
            ["init", "--control-plane", url, "--config", Path.Combine(directory.FullName, "agent.json")], Context(plane), CancellationToken.None));

        Assert.Equal(EdgeCli.UsageExitCode, code);
        Assert.Contains("must be https://", stderr.ToString(), StringComparison.Ordinal);
        Assert.Empty(plane.Requests);
    }

    [Theory]
    [InlineData("http://127.0.0.1:7071")]
    [InlineData("http://localhost:7071")]
    [InlineData("http://[::1]:7071")]
    [InlineData("https://control.example")]
    public async Task Init_HttpsOrLoopback_Enrols_WithTheTokenFromTheEnvironment(string url)
    {
        var plane = new ScriptedControlPlane();
        var path = Path.Combine(directory.FullName, "agent.json");
        var code = await WithEnrollmentTokenAsync("set_secret", () => EdgeCli.RunAsync(["init", "--control-plane", url, "--config", path], Context(plane), CancellationToken.None));

        Assert.True(code == 0, stderr.ToString());
        Assert.Equal("Bearer set_secret", plane.Authorizations.Single());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public async Task Init_TokenOnTheCommandLine_IsRefused()
    {
        var plane = new ScriptedControlPlane();
        var code = await EdgeCli.RunAsync(
            ["init", "--control-plane", "http://127.0.0.1:7071", "--enrollment-token", "set_secret", "--config", Path.Combine(directory.FullName, "agent.json")],
            Context(plane),
            CancellationToken.None);

        Assert.Equal(EdgeCli.UsageExitCode, code);
        Assert.Contains("every local user can read a command line", stderr.ToString(), StringComparison.Ordinal);
        Assert.Empty(plane.Requests);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Init_TokenFromAFileOrStdin_Enrols(bool fromStdin)
    {
        var plane = new ScriptedControlPlane();
        var tokenFile = Path.Combine(directory.FullName, "token");
        await File.WriteAllTextAsync(tokenFile, "set_from_file\n");
        var context = Context(plane, input: new StringReader("set_from_stdin\n"));
        var code = await EdgeCli.RunAsync(
            ["init", "--control-plane", "http://127.0.0.1:7071", "--enrollment-token-file", fromStdin ? "-" : tokenFile, "--config", Path.Combine(directory.FullName, "agent.json")],
            context,
            CancellationToken.None);

        Assert.True(code == 0, stderr.ToString());
        Assert.Equal(fromStdin ? "Bearer set_from_stdin" : "Bearer set_from_file", plane.Authorizations.Single());
    }

    [Fact]
    public async Task Start_ConfigPointingAtPlainHttpOffLoopback_IsRefused()
    {
        var plane = new ScriptedControlPlane();
        var path = await SaveConfigAsync("http://control.example");
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var code = await EdgeCli.RunAsync(["start", "--config", path], Context(plane), bound.Token);

        Assert.Equal(1, code);
        Assert.Contains("must be https://", stderr.ToString(), StringComparison.Ordinal);
        Assert.Empty(plane.Requests);
    }

    [Theory]
    [InlineData("../../../escaped")]
    [InlineData("a/b")]
    [InlineData("..")]
    [InlineData("")]
    [InlineData("job\nid")]
    public async Task Outbox_IdThatIsNotAName_IsRefused_AndNothingIsWrittenOutside(string id)
    {
        var outboxDirectory = Path.Combine(directory.FullName, "deep", "er", "outbox");
        var outbox = new Outbox(outboxDirectory);

        await Assert.ThrowsAsync<ArgumentException>(() => outbox.AddAsync(Outbox.ResultKind, id, "{}", CancellationToken.None));

        // .NET normalises '..' in a path before the kernel sees it, so a name made of such an id would land outside.
        Assert.Empty(Directory.EnumerateFiles(directory.FullName, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Agent_OfferedAJobWhoseIdIsAPath_NeitherRunsItNorWritesOutsideTheOutbox()
    {
        // The outbox is <test directory>/outbox: an unchecked name would land one level above the test directory.
        var escaped = "escaped-" + Guid.NewGuid().ToString("N")[..8];
        var plane = new ScriptedControlPlane();
        plane.Offer(Job("../../" + escaped, IsolationLevel.Standard, runtime: null));
        plane.Offer(Job("job_after", IsolationLevel.Standard, runtime: null));
        await RunAgentAsync(plane, new EdgeAgentOptions(), [TestRuntimes.Get(BwrapRuntime.RuntimeName)], () => plane.Results.ContainsKey("job_after"));

        Assert.DoesNotContain("../../" + escaped, plane.Results.Keys);
        Assert.Contains(plane.Events, e => e.Kind == "job-refused" && e.Data!["reason"].Contains("not a valid job id", StringComparison.Ordinal));
        Assert.Empty(Directory.EnumerateFiles(Path.GetDirectoryName(directory.FullName)!, escaped + "*", SearchOption.TopDirectoryOnly));
        Assert.Empty(Directory.EnumerateFiles(directory.FullName, escaped + "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Agent_SpecItCannotWrite_AnswersWithAnErrorResult()
    {
        // A file that is also a directory: the runtime refuses it before anything runs, and the run must hear so.
        var plane = new ScriptedControlPlane();
        var job = Job("job_files", IsolationLevel.Standard, runtime: null);
        plane.Offer(job with { Spec = job.Spec with { Files = new Dictionary<string, string> { ["a"] = "x", ["a/b"] = "y" } } });
        await RunAgentAsync(plane, new EdgeAgentOptions(), [TestRuntimes.Get(BwrapRuntime.RuntimeName)], () => plane.Results.ContainsKey("job_files"));

        var result = plane.Results["job_files"];
        Assert.Equal(ErrorCodes.ValidationFailed, result.Error!.Code);
        Assert.Contains("'a'", result.Error.Message, StringComparison.Ordinal);
        HostState.AssertClean();
    }

    [Fact]
    public async Task Outbox_AnOpenDirectoryAndFiles_AreMadeOwnerOnly()
    {
        var outboxDirectory = Directory.CreateDirectory(Path.Combine(directory.FullName, "outbox"));
        var open = (UnixFileMode)Convert.ToInt32("755", 8);
        File.SetUnixFileMode(outboxDirectory.FullName, open);
        var old = Path.Combine(outboxDirectory.FullName, "0000000000000000001-000001-result-job_old.json");
        await File.WriteAllTextAsync(old, "{}");
        File.SetUnixFileMode(old, (UnixFileMode)Convert.ToInt32("644", 8));

        var outbox = new Outbox(outboxDirectory.FullName);
        var added = await outbox.AddAsync(Outbox.ResultKind, "job_new", "{}", CancellationToken.None);

        var ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.Equal(ownerOnly | UnixFileMode.UserExecute, File.GetUnixFileMode(outboxDirectory.FullName));
        Assert.Equal(ownerOnly | UnixFileMode.UserExecute, File.GetUnixFileMode(outbox.DeadDirectory));
        Assert.Equal(ownerOnly, File.GetUnixFileMode(old));
        Assert.Equal(ownerOnly, File.GetUnixFileMode(added.Path));
    }

    [Fact]
    public async Task Config_ItsOwnOpenDirectory_IsMadeOwnerOnly_AndAForeignDirectoryIsLeftAlone()
    {
        var own = Directory.CreateDirectory(Path.Combine(directory.FullName, "own"));
        File.SetUnixFileMode(own.FullName, (UnixFileMode)Convert.ToInt32("755", 8));
        await Config("http://127.0.0.1:9").SaveAsync(Path.Combine(own.FullName, "agent.json"), CancellationToken.None);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(own.FullName));

        // A directory shared with other files (as /etc would be) is not the agent's to change.
        var shared = Directory.CreateDirectory(Path.Combine(directory.FullName, "shared"));
        await File.WriteAllTextAsync(Path.Combine(shared.FullName, "someone-elses.conf"), "x");
        File.SetUnixFileMode(shared.FullName, (UnixFileMode)Convert.ToInt32("755", 8));
        await Config("http://127.0.0.1:9").SaveAsync(Path.Combine(shared.FullName, "agent.json"), CancellationToken.None);
        Assert.Equal((UnixFileMode)Convert.ToInt32("755", 8), File.GetUnixFileMode(shared.FullName));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(shared.FullName, "agent.json")));
    }

    public void Dispose() => directory.Delete(recursive: true);

    private static EdgeJob Job(string id, IsolationLevel level, string? runtime) => new()
    {
        JobId = id,
        RunId = "run_" + Guid.NewGuid().ToString("N")[..8],
        Runtime = runtime,
        Spec = new ExecutionSpec { Language = Languages.Python, Code = "print('ran')", IsolationLevel = level, MemoryMiB = 128, Timeout = TimeSpan.FromSeconds(20) },
        Deadline = DateTimeOffset.UtcNow.AddMinutes(5),
    };

    private static AgentConfig Config(string url) => new()
    {
        ControlPlane = url,
        AgentId = "agt_test",
        AgentToken = "eat_test",
        TenantId = "tenant",
        Name = "test",
    };

    private async Task<string> SaveConfigAsync(string url)
    {
        var path = Path.Combine(directory.FullName, "agent.json");
        await Config(url).SaveAsync(path, CancellationToken.None);
        return path;
    }

    private EdgeContext Context(HttpMessageHandler? handler = null, TextReader? input = null) => new()
    {
        Out = stdout,
        Error = stderr,
        Input = input ?? new StringReader(""),
        RuntimeOptions = TestRuntimes.Options,
        CreateRuntimes = _ => [TestRuntimes.Get(BwrapRuntime.RuntimeName)],
        HttpHandler = handler,
    };

    private static async Task<int> WithEnrollmentTokenAsync(string token, Func<Task<int>> run)
    {
        Environment.SetEnvironmentVariable("SANDSTORM_EDGE_ENROLLMENT_TOKEN", token);
        try
        {
            return await run();
        }
        finally
        {
            Environment.SetEnvironmentVariable("SANDSTORM_EDGE_ENROLLMENT_TOKEN", null);
        }
    }

    private async Task RunAgentAsync(ScriptedControlPlane plane, EdgeAgentOptions options, IReadOnlyList<ISandboxRuntime> runtimes, Func<bool> done)
    {
        options = options with { HeartbeatInterval = TimeSpan.FromMilliseconds(200), PollWaitSeconds = 1, FlushInterval = TimeSpan.FromMilliseconds(100), ShutdownGrace = TimeSpan.Zero };
        using var agent = new EdgeAgent(Config("http://127.0.0.1:9"), Path.Combine(directory.FullName, "outbox"), options, runtimes, TextWriter.Null, plane);
        using var stop = new CancellationTokenSource();
        var loop = agent.RunAsync(stop.Token);
        try
        {
            await Poll.UntilAsync(() => Task.FromResult(done() && plane.Heartbeats.Count > 0), ok => ok, Deadline, "the agent to answer");
        }
        finally
        {
            await stop.CancelAsync();
            await loop.WaitAsync(Deadline);
        }
    }

    /// <summary>
    /// A control plane that offers scripted jobs and records what the agent sends: the stand-in for a misbehaving or
    /// hostile one (the real control plane never offers such jobs). Nothing leaves the process.
    /// </summary>
    private sealed class ScriptedControlPlane : HttpMessageHandler
    {
        private readonly ConcurrentQueue<EdgeJob> offers = new();

        public ConcurrentQueue<string> Requests { get; } = new();

        public ConcurrentQueue<string> Authorizations { get; } = new();

        public ConcurrentQueue<EdgeHeartbeat> Heartbeats { get; } = new();

        public ConcurrentDictionary<string, EdgeJobResult> Results { get; } = new(StringComparer.Ordinal);

        public ConcurrentQueue<EdgeTelemetryEvent> Events { get; } = new();

        public void Offer(EdgeJob job) => offers.Enqueue(job);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var path = request.RequestUri!.AbsolutePath;
            Requests.Enqueue($"{request.Method} {request.RequestUri}");
            Authorizations.Enqueue(request.Headers.Authorization?.ToString() ?? "");
            var body = request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken);
            object answer;
            if (path == "/v1/edge/agents")
            {
                answer = new EdgeEnrollResponse("agt_new", "eat_new", "tenant");
                return Json(answer, HttpStatusCode.Created);
            }

            if (path.EndsWith("/heartbeat", StringComparison.Ordinal))
            {
                Heartbeats.Enqueue(JsonSerializer.Deserialize<EdgeHeartbeat>(body, SandstormJson.Options)!);
                answer = new EdgeHeartbeatAck("agt_test", 30, DateTimeOffset.UtcNow);
            }
            else if (path.EndsWith("/jobs", StringComparison.Ordinal))
            {
                var jobs = new List<EdgeJob>();
                while (offers.TryDequeue(out var job))
                {
                    jobs.Add(job);
                }

                if (jobs.Count == 0)
                {
                    // As a long poll with nothing to hand out, briefly.
                    await Task.Delay(100, cancellationToken);
                }

                answer = new EdgeJobBatch(jobs);
            }
            else if (path.EndsWith("/result", StringComparison.Ordinal))
            {
                var result = JsonSerializer.Deserialize<EdgeJobResult>(body, SandstormJson.Options)!;
                Results[result.JobId] = result;
                answer = new EdgeJobResultAck(result.JobId, true);
            }
            else if (path.EndsWith("/telemetry", StringComparison.Ordinal))
            {
                foreach (var e in JsonSerializer.Deserialize<EdgeTelemetryBatch>(body, SandstormJson.Options)!.Events)
                {
                    Events.Enqueue(e);
                }

                answer = new EdgeTelemetryAck(0, 0);
            }
            else
            {
                return new HttpResponseMessage(HttpStatusCode.NotFound);
            }

            return Json(answer, HttpStatusCode.OK);
        }

        private static HttpResponseMessage Json(object value, HttpStatusCode status) =>
            new(status) { Content = new StringContent(JsonSerializer.Serialize(value, SandstormJson.Options), Encoding.UTF8, "application/json") };
    }
}
