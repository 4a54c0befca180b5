using System.Net;
using Sandstorm.Core.Contracts;
using Sandstorm.Edge.Agent;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Protocol.Tests;

/// <summary>A real <see cref="EdgeAgent"/> loop in-process, enrolled over HTTP, talking through a <see cref="NetworkSwitch"/>.</summary>
public sealed class AgentHarness : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly DirectoryInfo _directory;
    private Task? _loop;

    private AgentHarness(AgentConfig config, DirectoryInfo directory, EdgeAgent agent, NetworkSwitch network)
    {
        Config = config;
        _directory = directory;
        Agent = agent;
        Network = network;
    }

    public AgentConfig Config { get; }

    public EdgeAgent Agent { get; }

    public NetworkSwitch Network { get; }

    public string AgentId => Config.AgentId;

    /// <summary>Enrols with a fresh token of the API key's tenant and builds the agent (not started).</summary>
    public static async Task<AgentHarness> EnrollAsync(ControlPlaneHost host, string apiKey, string name)
    {
        var token = await host.EnrollmentTokenAsync(apiKey);
        var enrolled = await ControlPlaneClient.EnrollAsync(host.Url, token, new EdgeEnrollRequest { Name = name }, null, CancellationToken.None);
        var config = new AgentConfig
        {
            ControlPlane = host.Url,
            AgentId = enrolled.AgentId,
            AgentToken = enrolled.AgentToken,
            TenantId = enrolled.TenantId,
            Name = name,
        };
        var directory = Directory.CreateTempSubdirectory("sandstorm-edge-agent-");
        var network = new NetworkSwitch();
        var options = new EdgeAgentOptions
        {
            MaxConcurrency = 2,
            HeartbeatInterval = TimeSpan.FromMilliseconds(400),
            PollWaitSeconds = 5,
            FlushInterval = TimeSpan.FromMilliseconds(200),
            MaxBackoff = TimeSpan.FromMilliseconds(500),

            // Stopping an agent in these tests is a crash: running jobs die with it and post nothing.
            ShutdownGrace = TimeSpan.Zero,
        };
        var runtimeOptions = new RuntimeOptions();

        // The standard level's best runtime and the trusted one are enough here, and probing fewer keeps start-up short.
        ISandboxRuntime[] runtimes = [new ProcessRuntime(runtimeOptions), new BwrapRuntime(runtimeOptions)];
        var agent = new EdgeAgent(config, Path.Combine(directory.FullName, "outbox"), options, runtimes, TextWriter.Null, network);
        return new AgentHarness(config, directory, agent, network);
    }

    public void Start() => _loop = Task.Run(() => Agent.RunAsync(_stop.Token));

    /// <summary>Stops the loop (running jobs are killed: grace is zero) and waits for it to end.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null)
        {
            await _loop.WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Agent.Dispose();
        Network.Dispose();
        _stop.Dispose();
        _directory.Delete(recursive: true);
    }
}

/// <summary>
/// The agent's network to the control plane: up, down (connections refused before anything is sent), or losing
/// responses (requests reach the control plane, their answers never come back).
/// </summary>
public sealed class NetworkSwitch : DelegatingHandler
{
    public NetworkSwitch()
        : base(new SocketsHttpHandler())
    {
    }

    public enum State
    {
        Up,
        Down,
        LoseResponses,
    }

    public State Mode { get; set; } = State.Up;

    /// <summary>When set, the next poll answer that carries a job reaches the control plane's side only: the agent never sees it.</summary>
    public bool LoseNextJobOffer { get; set; }

    /// <summary>Every request and what the switch did with it ("Up POST /v1/...").</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Log { get; } = new();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        // Read once, before sending: a switch flipped while the request is in flight must not change its fate.
        var mode = Mode;
        Log.Enqueue($"{mode} {request.Method} {request.RequestUri?.AbsolutePath}");
        if (mode == State.Down)
        {
            throw new HttpRequestException("connection refused (network switch down)", null, HttpStatusCode.ServiceUnavailable);
        }

        var response = await base.SendAsync(request, cancellationToken);
        if (LoseNextJobOffer && request.Method == HttpMethod.Get && request.RequestUri?.AbsolutePath.EndsWith("/jobs", StringComparison.Ordinal) == true)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (body.Contains("\"jobId\"", StringComparison.Ordinal))
            {
                LoseNextJobOffer = false;
                Log.Enqueue($"lost job offer {request.RequestUri.AbsolutePath}");
                response.Dispose();
                throw new HttpRequestException("connection reset (network switch lost the job offer)");
            }

            // Not an offer: hand the buffered answer on untouched.
            var replay = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
            response.Content = replay;
        }

        if (mode == State.LoseResponses)
        {
            response.Dispose();
            throw new HttpRequestException("connection reset (network switch lost the response)");
        }

        return response;
    }
}
