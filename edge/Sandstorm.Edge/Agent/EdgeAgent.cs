using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Observability;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Agent;

/// <summary>How an agent runs (from <c>start</c>'s options; tests shorten the intervals).</summary>
public sealed record EdgeAgentOptions
{
    public int MaxConcurrency { get; init; } = 2;

    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Seconds the control plane may hold a poll open (the server caps it at 30).</summary>
    public int PollWaitSeconds { get; init; } = 25;

    /// <summary>How often the outbox is retried and telemetry is batched when nothing wakes it earlier.</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Longest pause between attempts while the control plane is unreachable.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>On shutdown, how long running jobs may finish; then they are killed and left for the control plane to re-dispatch.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Offer isolation <c>none</c> (the <c>process</c> runtime: tenant code as this process's user, no sandbox). Off unless
    /// asked for (<c>start --allow-unisolated</c>), and refused as root.
    /// </summary>
    public bool AllowUnisolated { get; init; }
}

/// <summary>
/// The edge agent's loop: heartbeats its capabilities, long-polls for jobs, runs each on the best working runtime for its
/// isolation level, and hands results and telemetry to the <see cref="Outbox"/>, which delivers them when the control
/// plane answers. Only outbound calls; nothing listens.
/// </summary>
public sealed class EdgeAgent : IDisposable
{
    private readonly AgentConfig _config;
    private readonly EdgeAgentOptions _options;
    private readonly IReadOnlyList<ISandboxRuntime> _runtimes;
    private readonly RuntimeSelector _selector;
    private readonly ControlPlaneClient _client;
    private readonly Outbox _outbox;
    private readonly TextWriter _log;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, RunningJob> _running = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<EdgeTelemetryEvent> _telemetry = new();

    // Trace context of each result this process produced, so its delivery continues the run's trace (lost on restart).
    private readonly ConcurrentDictionary<string, ActivityContext> _resultTraces = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _flushNow = new(0);
    private readonly SemaphoreSlim _slots;
    private readonly Runtimes.Shield.ShieldMonitor? _shield;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _alertsSeen = new(StringComparer.Ordinal);
    private IReadOnlyList<EdgeRuntimeStatus> _statuses = [];
    private bool _reachable = true;

    public EdgeAgent(
        AgentConfig config,
        string outboxDirectory,
        EdgeAgentOptions options,
        IReadOnlyList<ISandboxRuntime> runtimes,
        TextWriter log,
        HttpMessageHandler? handler = null,
        TimeProvider? time = null,
        Runtimes.Shield.ShieldMonitor? shield = null)
    {
        if (options.AllowUnisolated && Environment.IsPrivilegedProcess)
        {
            throw new InvalidOperationException(UnisolatedAsRoot);
        }

        _shield = shield;
        _config = config;
        _options = options;

        // Without the flag the agent neither reports nor runs an unisolated runtime.
        _runtimes = options.AllowUnisolated ? runtimes : [.. runtimes.Where(r => r.Isolation > IsolationLevel.None)];
        _selector = new RuntimeSelector(runtimes);
        _client = new ControlPlaneClient(config, handler);
        _outbox = new Outbox(outboxDirectory);
        _log = TextWriter.Synchronized(log);
        _time = time ?? TimeProvider.System;
        _slots = new SemaphoreSlim(options.MaxConcurrency);
    }

    /// <summary>Why isolation <c>none</c> is never offered by a root agent.</summary>
    public const string UnisolatedAsRoot =
        "--allow-unisolated runs tenant code as this user; refusing as root (uid 0): start the agent as an unprivileged user to offer isolation 'none'";

    public Outbox Outbox => _outbox;

    /// <summary>Jobs running now.</summary>
    public int Running => _running.Count;

    /// <summary>Runs until <paramref name="stop"/>; then stops polling, lets running jobs finish within the grace period and flushes once more.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        _statuses = await ProbeAsync(stop);
        Log($"agent {_config.AgentId} ({_config.Name}) for tenant {_config.TenantId} → {_config.ControlPlane}; runtimes: "
            + string.Join(", ", _statuses.Where(s => s.Works).Select(s => $"{s.Name}/{RuntimeSelector.Format(s.Isolation)}")));
        Event("agent-started", null, _statuses.ToDictionary(s => s.Name, s => s.Works ? "works" : "no: " + s.Reason));

        using var background = new CancellationTokenSource();
        using var jobs = new CancellationTokenSource();
        var heartbeat = HeartbeatLoopAsync(background.Token);
        var flush = FlushLoopAsync(background.Token);
        try
        {
            await PollLoopAsync(jobs.Token, stop);
        }
        finally
        {
            Log($"stopping: waiting up to {_options.ShutdownGrace.TotalSeconds:0} s for {_running.Count} running job(s)");
            var all = Task.WhenAll(_running.Values.Select(r => r.Task));
            if (await Task.WhenAny(all, Task.Delay(_options.ShutdownGrace, _time, CancellationToken.None)) != all)
            {
                await jobs.CancelAsync();
            }

            await Task.WhenAll(_running.Values.Select(r => r.Task));

            // One last delivery attempt; whatever is left stays on disk for the next start.
            using var last = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await FlushOnceAsync(last.Token);
            await background.CancelAsync();
            await Task.WhenAll(heartbeat, flush);
            Log($"stopped; {_outbox.Pending().Count} item(s) left in the outbox");
        }
    }

    public void Dispose()
    {
        _client.Dispose();
        _flushNow.Dispose();
        _slots.Dispose();
    }

    private async Task<IReadOnlyList<EdgeRuntimeStatus>> ProbeAsync(CancellationToken ct)
    {
        var statuses = new List<EdgeRuntimeStatus>();
        foreach (var runtime in _runtimes)
        {
            var probe = await runtime.ProbeAsync(ct);

            // What Shield's monitor gives this runtime here: the control plane places runs that require coverage by it.
            var coverage = _shield?.CoverageOf(runtime.Name) ?? Runtimes.Shield.ShieldCoverage.None("the agent runs no Shield monitor");
            statuses.Add(new EdgeRuntimeStatus(runtime.Name, runtime.Isolation, probe.Works, probe.Reason) { Shield = coverage.Level, ShieldReason = coverage.Reason, Limits = probe.Limits });
        }

        return statuses;
    }

    private async Task PollLoopAsync(CancellationToken jobs, CancellationToken stop)
    {
        var slots = _slots;
        var backoff = TimeSpan.FromSeconds(1);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await slots.WaitAsync(stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var free = 1;
            while (slots.Wait(0))
            {
                free++;
            }

            EdgeJobBatch batch;
            try
            {
                batch = await _client.PollAsync(_options.PollWaitSeconds, free, stop);
                Reachable(true, null);
                backoff = TimeSpan.FromSeconds(1);
            }
            catch (OperationCanceledException)
            {
                slots.Release(free);
                return;
            }
            catch (ControlPlaneException e)
            {
                slots.Release(free);
                Reachable(false, e.Message);
                if (!await DelayAsync(backoff, stop))
                {
                    return;
                }

                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxBackoff.Ticks));
                continue;
            }

            if (free > batch.Jobs.Count)
            {
                slots.Release(free - batch.Jobs.Count);
            }

            var held = HeldJobs();
            foreach (var job in batch.Jobs)
            {
                // Job ids name files in the outbox and parts of URLs: one that is not a plain name is not run (and could
                // not be answered either); a control plane that sends one is not ours.
                if (!Outbox.IsValidId(job.JobId))
                {
                    Log($"refused a job whose id is not a valid job id: {Printable(job.JobId)}");
                    Event("job-refused", null, new Dictionary<string, string> { ["reason"] = $"not a valid job id: {Printable(job.JobId)}" });
                    slots.Release();
                    continue;
                }

                // Idempotent by job id: a job offered again (its lease expired before a heartbeat listed it) that this
                // agent already runs or has a result for is not run a second time; the next heartbeat lists it.
                if (held.Contains(job.JobId))
                {
                    Log($"job {job.JobId} offered again while already held here; not run twice");
                    Event("job-offer-ignored", job.JobId, null);
                    slots.Release();
                    continue;
                }

                held.Add(job.JobId);
                var running = new RunningJob(CancellationTokenSource.CreateLinkedTokenSource(jobs));
                _running[job.JobId] = running;
                running.Task = Task.Run(
                    async () =>
                    {
                        try
                        {
                            await ExecuteAsync(job, running);
                        }
                        finally
                        {
                            _running.TryRemove(job.JobId, out _);
                            running.Stop.Dispose();
                            slots.Release();
                        }
                    },
                    CancellationToken.None);
            }
        }
    }

    private async Task ExecuteAsync(EdgeJob job, RunningJob running)
    {
        using var span = EdgeObservability.StartJob(job, _config);
        var ct = running.Stop.Token;
        Log($"job {job.JobId} (run {job.RunId}): {job.Spec.Language}, isolation {RuntimeSelector.Format(job.Spec.IsolationLevel)}");
        Event("job-started", job.JobId, new Dictionary<string, string> { ["runId"] = job.RunId });
        EdgeJobResult result;
        try
        {
            if (!_options.AllowUnisolated
                && (job.Spec.IsolationLevel == IsolationLevel.None || string.Equals(job.Runtime, ProcessRuntime.RuntimeName, StringComparison.OrdinalIgnoreCase)))
            {
                throw new SandstormException(
                    ErrorCodes.IsolationUnavailable,
                    "this edge agent does not offer isolation 'none' (the process runtime): it runs code without a sandbox, and is offered only by an agent started with --allow-unisolated, never as root",
                    422);
            }

            var runtime = await _selector.SelectAsync(job.Spec.IsolationLevel, job.Runtime, ct);
            var executed = await runtime.ExecuteAsync(job.Spec, ct);
            // The control plane checks the level against the job's and records it in the run's provenance.
            result = new EdgeJobResult { JobId = job.JobId, Result = executed with { Isolation = runtime.Isolation }, Isolation = runtime.Isolation };
            Event("job-finished", job.JobId, new Dictionary<string, string>
            {
                ["runtime"] = executed.Runtime,
                ["exitCode"] = executed.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "signal",
                ["wallMs"] = executed.WallTimeMs.ToString(CultureInfo.InvariantCulture),
                ["cpuMs"] = executed.CpuTimeMs.ToString(CultureInfo.InvariantCulture),
                ["peakMemoryBytes"] = executed.PeakMemoryBytes.ToString(CultureInfo.InvariantCulture),
                ["timedOut"] = executed.TimedOut ? "true" : "false",
                ["oomKilled"] = executed.OomKilled ? "true" : "false",
            });
            Log($"job {job.JobId}: {executed.Runtime}, exit {executed.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "signal"}, {executed.WallTimeMs} ms");
        }
        catch (SandstormException e)
        {
            // No runtime here gives the level (or the named runtime does not work): the run fails with the reason.
            result = new EdgeJobResult { JobId = job.JobId, Error = new RunError(e.Code, e.Message) };
            Event("job-refused", job.JobId, new Dictionary<string, string> { ["code"] = e.Code, ["reason"] = e.Message });
            Log($"job {job.JobId} refused: {e.Message}");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested && running.CancelRequested)
        {
            // The control plane no longer wants it (run cancelled or ended, job moved): the runtime killed the sandbox.
            result = new EdgeJobResult { JobId = job.JobId, Error = new RunError(ErrorCodes.Cancelled, "cancelled by the control plane; the sandbox was killed") };
            Event("job-cancelled", job.JobId, new Dictionary<string, string> { ["runId"] = job.RunId });
            Log($"job {job.JobId} cancelled by the control plane; sandbox killed");
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Killed by shutdown: no result, so the control plane gives the job to another agent once our heartbeats stop.
            Log($"job {job.JobId} killed by shutdown; left to the control plane");
            return;
        }
        catch (ArgumentException e)
        {
            // The runtime refused the spec before anything ran (a file name it cannot write, a variable it cannot set).
            result = new EdgeJobResult { JobId = job.JobId, Error = new RunError(ErrorCodes.ValidationFailed, $"the agent refused the job: {e.Message}") };
            Event("job-refused", job.JobId, new Dictionary<string, string> { ["code"] = ErrorCodes.ValidationFailed, ["reason"] = e.Message });
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException or System.ComponentModel.Win32Exception)
        {
            result = new EdgeJobResult { JobId = job.JobId, Error = new RunError(ErrorCodes.ExecutionFailed, $"the agent could not run the job: {e.Message}") };
        }

        EdgeObservability.Finished(span, result);
        if (span is not null)
        {
            _resultTraces[job.JobId] = span.Context;
        }

        await _outbox.AddAsync(Outbox.ResultKind, job.JobId, JsonSerializer.Serialize(result, SandstormJson.Options), CancellationToken.None);
        _flushNow.Release();
    }

    private async Task HeartbeatLoopAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                var ack = await _client.HeartbeatAsync(
                    new EdgeHeartbeat
                    {
                        Runtimes = _statuses,
                        Cpu = Environment.ProcessorCount,
                        MemoryMiB = MachineStats.MemoryMiB(),
                        Load = MachineStats.Load(),
                        QueueDepth = _running.Count,
                        MaxConcurrency = _options.MaxConcurrency,
                        Jobs = [.. HeldJobs().Order(StringComparer.Ordinal)],
                        Languages = Languages.Available(),
                        BootcImage = BootImageFile.Current,
                    },
                    ct);
                Reachable(true, null);
                Cancel(ack.Cancel ?? []);
                await QuarantineAsync(ack.Quarantine ?? []);
            }
            catch (ControlPlaneException e)
            {
                Reachable(false, e.Message);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (!await DelayAsync(_options.HeartbeatInterval, ct))
            {
                return;
            }
        }
    }

    private async Task FlushLoopAsync(CancellationToken ct)
    {
        var backoff = _options.FlushInterval;
        while (!ct.IsCancellationRequested)
        {
            bool delivered;
            try
            {
                delivered = await FlushOnceAsync(ct);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or HttpRequestException)
            {
                // The loop must outlive a bad file or a surprise from the network: log and try again later.
                Log($"outbox delivery failed: {e.GetType().Name}: {e.Message}");
                delivered = false;
            }

            backoff = delivered ? _options.FlushInterval : TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxBackoff.Ticks));
            try
            {
                await _flushNow.WaitAsync(backoff, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Writes buffered telemetry to the outbox, then delivers the outbox in order; false when the control plane could not be reached.</summary>
    private async Task<bool> FlushOnceAsync(CancellationToken ct)
    {
        try
        {
            var events = new List<EdgeTelemetryEvent>();
            while (events.Count < 500 && _telemetry.TryDequeue(out var e))
            {
                events.Add(e);
            }

            if (events.Count > 0)
            {
                await _outbox.AddAsync(Outbox.TelemetryKind, Guid.NewGuid().ToString("N"), JsonSerializer.Serialize(new EdgeTelemetryBatch(events), SandstormJson.Options), ct);
            }

            // Results first: a run is waiting on each, while telemetry is only history.
            foreach (var item in _outbox.Pending().OrderBy(i => i.Kind == Outbox.ResultKind ? 0 : 1))
            {
                var json = await Outbox.ReadAsync(item, ct);
                using var delivery = item.Kind == Outbox.ResultKind && _resultTraces.TryGetValue(item.Id, out var trace)
                    ? SandstormDiagnostics.ActivitySource.StartActivity(ObservabilityNames.Spans.EdgeDeliver, ActivityKind.Producer, trace)
                    : null;
                try
                {
                    await _client.DeliverAsync(item, json, ct);
                    Outbox.Delete(item);
                    _resultTraces.TryRemove(item.Id, out _);
                    if (item.Kind == Outbox.ResultKind)
                    {
                        Log($"result of {item.Id} delivered");
                    }
                }
                catch (ControlPlaneException e) when (e.Permanent)
                {
                    Log($"control plane refused {item.Kind} {item.Id}: {e.Message}; kept in {_outbox.DeadDirectory}");
                    _outbox.Reject(item, e.Message);
                    _resultTraces.TryRemove(item.Id, out _);
                    SandstormDiagnostics.Fail(delivery, "refused", e.Message);
                }
                catch (ControlPlaneException e)
                {
                    Reachable(false, e.Message);
                    SandstormDiagnostics.Fail(delivery, "unreachable", e.Message);
                    return false;
                }
            }

            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Jobs this agent holds: running, or finished with a result still waiting in the outbox.</summary>
    private HashSet<string> HeldJobs()
    {
        var held = new HashSet<string>(_running.Keys, StringComparer.Ordinal);
        foreach (var item in _outbox.Pending())
        {
            if (item.Kind == Outbox.ResultKind)
            {
                held.Add(item.Id);
            }
        }

        return held;
    }

    /// <summary>Kills the sandboxes of jobs the control plane no longer wants; their results say <c>cancelled</c>.</summary>
    private void Cancel(IReadOnlyList<string> jobIds)
    {
        foreach (var jobId in jobIds)
        {
            if (_running.TryGetValue(jobId, out var running) && !running.CancelRequested)
            {
                running.CancelRequested = true;
                try
                {
                    running.Stop.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // It finished meanwhile; its result is already on its way.
                }
            }
        }
    }

    /// <summary>
    /// Falco alerts the control plane could not match itself: each names sandboxes (ids, Falco's short ids) or host pids;
    /// one of this agent's sandboxes that matches is killed (at or above the tenant's threshold), and the finding goes back
    /// with its job's result. Each alert is acted on once (the control plane repeats it until it is stale).
    /// </summary>
    private async Task QuarantineAsync(IReadOnlyList<EdgeQuarantineRequest> requests)
    {
        var now = _time.GetUtcNow();
        foreach (var (id, seen) in _alertsSeen)
        {
            if (now - seen > TimeSpan.FromMinutes(10))
            {
                _alertsSeen.TryRemove(id, out _);
            }
        }

        foreach (var request in requests)
        {
            var id = request.Finding.Id ?? request.Finding.Rule + "@" + request.Finding.EventTime.ToString("O", CultureInfo.InvariantCulture);
            if (!_alertsSeen.TryAdd(id, now))
            {
                continue;
            }

            var pids = request.Hostname is null || string.Equals(request.Hostname, Environment.MachineName, StringComparison.OrdinalIgnoreCase) ? request.Pids : [];
            var sandbox = request.SandboxIds.Select(RunningSandboxes.Find).FirstOrDefault(s => s is not null)
                ?? pids.Select(RunningSandboxes.FindByPid).FirstOrDefault(s => s is not null);
            if (sandbox is null || (sandbox.TenantId is { } tenant && tenant != _config.TenantId))
            {
                continue;
            }

            var recorded = await sandbox.ReportAsync(request.Finding, request.Kill);
            Log($"Falco alert '{request.Finding.Rule}' ({request.Finding.Priority}) names sandbox {sandbox.Id} (run {sandbox.RunId ?? "-"}): "
                + (recorded.Quarantined ? $"quarantined in {recorded.QuarantineLatencyMs?.ToString("F1", CultureInfo.InvariantCulture) ?? "?"} ms" : "reported"));
            Event("shield-alert", null, new Dictionary<string, string>
            {
                ["sandbox"] = sandbox.Id,
                ["runId"] = sandbox.RunId ?? "",
                ["rule"] = request.Finding.Rule,
                ["action"] = recorded.Quarantined ? "killed" : "reported",
            });
        }
    }

    private void Event(string kind, string? jobId, IReadOnlyDictionary<string, string>? data) =>
        _telemetry.Enqueue(new EdgeTelemetryEvent { EventId = Guid.NewGuid().ToString("N"), JobId = jobId, Kind = kind, At = _time.GetUtcNow(), Data = data });

    // Logs only changes, so an outage is one line, not one per retry.
    private void Reachable(bool reachable, string? why)
    {
        if (reachable != _reachable)
        {
            _reachable = reachable;
            Log(reachable ? "control plane reachable again" : $"control plane unreachable ({why}); results wait in {_outbox.Directory}");
        }
    }

    private void Log(string message) => _log.WriteLine($"{_time.GetUtcNow():HH:mm:ss} {message}");

    // A control-plane string shown in a log line or an event: control characters escaped, at most 100 characters.
    private static string Printable(string? text)
    {
        var escaped = string.Concat((text ?? "").Select(c => char.IsControl(c) ? $"\\u{(int)c:X4}" : c.ToString()));
        return escaped.Length <= 100 ? escaped : escaped[..100] + "…";
    }

    /// <summary>A job running on this agent: its task and the switch that kills its sandbox.</summary>
    private sealed class RunningJob(CancellationTokenSource stop)
    {
        public CancellationTokenSource Stop { get; } = stop;

        public Task Task { get; set; } = Task.CompletedTask;

        /// <summary>Set before <see cref="Stop"/> fires for a control-plane cancel (as opposed to shutdown).</summary>
        public volatile bool CancelRequested;
    }

    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken ct)
    {
        try
        {
            await Task.Delay(delay, _time, ct);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
