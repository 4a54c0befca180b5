using Microsoft.Extensions.Configuration;
using Sandstorm.Edge.Agent;
using Sandstorm.Runtimes;
using Sandstorm.Runtimes.Shield;

namespace Sandstorm.Edge.Commands;

/// <summary><c>sandstorm-edge start</c>: runs the agent until SIGTERM or Ctrl+C.</summary>
public sealed class StartCommand : IEdgeCommand
{
    public string Name => "start";

    public string Summary => "run the agent: heartbeat, take jobs, run them in sandboxes, deliver results";

    public string Usage => """
        usage: sandstorm-edge start [--config PATH] [--max-concurrency N] [--heartbeat-seconds S] [--shutdown-grace-seconds S] [--warm-gvisor N]
                                    [--allow-unisolated] [--no-shield]
          --config                  agent config written by init (default: $SANDSTORM_EDGE_CONFIG, else ~/.sandstorm-edge/agent.json)
          --max-concurrency         jobs run at once (default 2)
          --heartbeat-seconds       heartbeat interval (default 5; the control plane gives jobs away after 30 s of silence)
          --shutdown-grace-seconds  on SIGTERM/Ctrl+C, how long running jobs may finish before they are killed (default 30)
          --warm-gvisor             gVisor sandboxes kept booted ahead of demand (default 1; 0 boots one per job)
          --allow-unisolated        also offer isolation 'none' (the process runtime: code runs as this user, no sandbox);
                                    refused as root
          --no-shield               do not run Shield's runtime monitor (bpftrace, gVisor trace points); Shield runs then
                                    report coverage none (the monitor also says none, and why, where eBPF cannot run)
        Only outbound connections. Results and telemetry go through an outbox on disk (beside the config) and are
        delivered when the control plane answers, so nothing is lost while it is unreachable.
        With OTEL_EXPORTER_OTLP_ENDPOINT set (and the other standard OTEL_* variables), each job's span (in its run's
        trace) and the agent's metrics are exported by OTLP there.
        """;

    public async Task<int> RunAsync(IReadOnlyList<string> args, EdgeContext context, CancellationToken ct)
    {
        var parsed = ParsedArguments.Parse(args, ["config", "max-concurrency", "heartbeat-seconds", "shutdown-grace-seconds", "warm-gvisor"], ["allow-unisolated", "no-shield"]);
        var allowUnisolated = parsed.Has("allow-unisolated");
        if (allowUnisolated && Environment.IsPrivilegedProcess)
        {
            throw new UsageException(EdgeAgent.UnisolatedAsRoot);
        }

        var path = AgentConfig.ResolvePath(parsed.Value("config"));
        if (!File.Exists(path))
        {
            await context.Error.WriteLineAsync($"sandstorm-edge start: no agent config at {path}; run sandstorm-edge init first");
            return 1;
        }

        AgentConfig config;
        try
        {
            AgentConfig.SecureDirectory(Path.GetDirectoryName(path)!, Path.GetFileName(path));
            config = await AgentConfig.LoadAsync(path, ct);
            if (ControlPlaneUrl.Problem(config.ControlPlane) is { } problem)
            {
                throw new InvalidOperationException($"{path}: {problem}");
            }

            WorkRoot.EnsurePrivate(context.RuntimeOptions);
        }
        catch (InvalidOperationException e)
        {
            await context.Error.WriteLineAsync($"sandstorm-edge start: {e.Message}");
            return 1;
        }

        using var observability = EdgeObservability.Start(config, new ConfigurationBuilder().AddEnvironmentVariables().Build());
        var options = new EdgeAgentOptions
        {
            MaxConcurrency = parsed.Int("max-concurrency", 2, 1, 256),
            HeartbeatInterval = TimeSpan.FromSeconds(parsed.Number("heartbeat-seconds", 5, 0, 300)),
            ShutdownGrace = TimeSpan.FromSeconds(parsed.Int("shutdown-grace-seconds", 30, 0, 3600)),

            // In a VPC the control plane may be away for long: retry less often while it is.
            MaxBackoff = config.VpcMode ? TimeSpan.FromMinutes(2) : TimeSpan.FromSeconds(30),
            AllowUnisolated = allowUnisolated,
        };
        // Shield's monitor first: once per process, before any sandbox (a gVisor sandbox reports to it only if it listens
        // when the sandbox boots). Where eBPF cannot run it still starts, and says coverage none and why.
        await using var shield = parsed.Has("no-shield") ? null : await ShieldMonitor.StartAsync(ShieldMonitorOptions.For(context.RuntimeOptions), ct);
        if (shield is not null)
        {
            await context.Out.WriteLineAsync($"Shield: eBPF {shield.EbpfCoverage}; gVisor {shield.GvisorCoverage.Level.ToString().ToLowerInvariant()}");
        }

        // A long-running agent keeps a gVisor sandbox booted ahead, so strong isolation starts in about half the time.
        var runtimes = context.CreateRuntimes(context.RuntimeOptions with { WarmGvisorSandboxes = parsed.Int("warm-gvisor", 1, 0, 64), Shield = shield });
        foreach (var gvisor in runtimes.OfType<GvisorRuntime>())
        {
            if ((await gvisor.ProbeAsync(ct)).Works)
            {
                gvisor.StartWarming();
            }
        }

        try
        {
            using var agent = new EdgeAgent(config, config.OutboxDirectory(path), options, runtimes, context.Out, context.HttpHandler, shield: shield);
            await agent.RunAsync(ct);
            return 0;
        }
        finally
        {
            foreach (var runtime in runtimes.OfType<IAsyncDisposable>())
            {
                await runtime.DisposeAsync();
            }
        }
    }
}
