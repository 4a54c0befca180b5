using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Pricing;
using Sandstorm.Core.Sandboxes;
using Sandstorm.Runtimes;

namespace Sandstorm.Providers.Local;

/// <summary>
/// Runs code on this machine through the same runtimes as an edge agent: bwrap, runc and podman for <c>standard</c>,
/// gVisor for <c>strong</c>, and — only where the operator allowed it (<see cref="LocalExecutionOptions.AllowUnisolated"/>)
/// — a plain process for <c>none</c>. It offers what works here (each runtime probes itself once, with a real sandbox).
/// Releasing a lease kills its execution if it is still running (cancel, deadline).
/// </summary>
public sealed class LocalProvider : ISandboxProvider, ISandboxKeeper, IShieldAlertTarget, IAsyncDisposable
{
    public const string Id = "local";
    public const string Region = "local";

    /// <summary>Lease data key naming the host process that holds a kept sandbox (a sandbox of another process is lost).</summary>
    public const string HostKey = "host";

    /// <summary>This host process: kept sandboxes live in it and die with it.</summary>
    public static string Instance { get; } = Guid.NewGuid().ToString("N");

    private readonly IReadOnlyList<ISandboxRuntime> _runtimes;
    private readonly LocalExecutionOptions _options;
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new();
    private readonly ConcurrentDictionary<string, KeptSandbox> _kept = new();
    private readonly ConcurrentDictionary<string, KeptSandboxPool> _pools = new();
    private readonly Lazy<Task<ProviderCapabilities>> _working;
    private readonly Runtimes.Shield.ShieldMonitor? _shield;

    public LocalProvider(IReadOnlyList<ISandboxRuntime> runtimes, IOptions<LocalExecutionOptions> options, RuntimeOptions? runtimeOptions = null)
    {
        _options = options.Value;
        _shield = runtimeOptions?.Shield;
        _runtimes = [.. runtimes.Where(r => r.Isolation != IsolationLevel.None || _options.AllowUnisolated)];
        Capabilities = new ProviderCapabilities
        {
            Provider = Id,
            Runtimes = [.. _runtimes.Select(r => new RuntimeOffer(r.Name, r.Isolation))],
            Regions = [Region],
            // What this machine has installed (TypeScript needs node-typescript); the sandboxes bind the host's /usr.
            Languages = Languages.Available(),
            Price = TierFees.EdgePrice,
        };
        _working = new Lazy<Task<ProviderCapabilities>>(ProbeAsync);
    }

    /// <summary>Every runtime this host could offer; <see cref="GetCapabilitiesAsync"/> narrows it to those that work.</summary>
    public ProviderCapabilities Capabilities { get; }

    /// <summary>The runtimes that passed their probe (a real sandbox each, once per process).</summary>
    public async ValueTask<ProviderCapabilities?> GetCapabilitiesAsync(string tenantId, CancellationToken cancellationToken)
    {
        var working = await _working.Value.WaitAsync(cancellationToken);
        return working.Runtimes.Count == 0 ? null : working;
    }

    public async Task<SandboxLease> ProvisionAsync(ProvisionRequest request, CancellationToken cancellationToken)
    {
        var runtime = await SelectAsync(request.IsolationLevel, request.Runtime, cancellationToken);

        // The lease id is the run id: a retried provision finds the same (not yet started) sandbox.
        return new SandboxLease(Id, request.RunId, runtime.Name, Region);
    }

    public async Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        RefuseWhatCannotRunHere(spec);
        var runtime = await SelectAsync(spec.IsolationLevel, lease.Runtime, cancellationToken);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _running[lease.SandboxId] = linked;
        try
        {
            return await runtime.ExecuteAsync(spec, linked.Token) with { Isolation = runtime.Isolation };
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ProviderException(Id, ErrorCodes.Cancelled, "the sandbox was released while the code was running");
        }
        finally
        {
            _running.TryRemove(new KeyValuePair<string, CancellationTokenSource>(lease.SandboxId, linked));
        }
    }

    public Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        if (_running.TryRemove(lease.SandboxId, out var running))
        {
            running.Cancel();
        }

        return Task.CompletedTask;
    }

    public bool CanKeep(string runtime) => _runtimes.Any(r => r.Name == runtime && r is SandboxRuntimeBase { CanKeep: true });

    /// <summary>Starts a kept sandbox on the runtime the router chose (a warm one when the pool has it).</summary>
    public async Task<SandboxLease> CreateSandboxAsync(KeptSandboxRequest request, CancellationToken cancellationToken)
    {
        var runtime = await SelectAsync(request.IsolationLevel, request.Runtime, cancellationToken);
        if (runtime is not SandboxRuntimeBase { CanKeep: true } keeper)
        {
            throw new ProviderException(Id, ErrorCodes.NotSupported, $"runtime '{runtime.Name}' cannot keep a sandbox across commands");
        }

        var spec = new KeptSandboxSpec { Cpu = request.Cpu, MemoryMiB = request.MemoryMiB, DiskMiB = request.DiskMiB, MaxProcesses = _options.KeptMaxProcesses };
        KeptSandbox sandbox;
        try
        {
            sandbox = await PoolOf(keeper).TakeAsync(spec, cancellationToken);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or SandboxException)
        {
            throw new ProviderException(Id, ErrorCodes.ProvisionFailed, $"the {runtime.Name} sandbox did not start: {e.Message}");
        }

        if (!_kept.TryAdd(request.SandboxId, sandbox))
        {
            await sandbox.DisposeAsync();
            throw new ProviderException(Id, ErrorCodes.Conflict, $"sandbox {request.SandboxId} already exists on this host");
        }

        return new SandboxLease(Id, request.SandboxId, runtime.Name, Region) { Data = new Dictionary<string, string> { [HostKey] = Instance } };
    }

    public ValueTask<ISandboxSession?> GetSessionAsync(SandboxLease lease, CancellationToken cancellationToken) =>
        ValueTask.FromResult<ISandboxSession?>(_kept.TryGetValue(lease.SandboxId, out var sandbox) && sandbox.IsAlive ? sandbox : null);

    public async Task DestroySandboxAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        if (_kept.TryRemove(lease.SandboxId, out var sandbox))
        {
            await sandbox.DisposeAsync();
        }
    }

    /// <summary>Starts the warm pools of kept sandboxes on the runtimes that work (called once at start-up).</summary>
    public void StartPools(IEnumerable<string> runtimeNames)
    {
        foreach (var name in runtimeNames)
        {
            if (_runtimes.FirstOrDefault(r => r.Name == name) is SandboxRuntimeBase { CanKeep: true } keeper && _options.WarmKeptSandboxes.GetValueOrDefault(name) > 0)
            {
                PoolOf(keeper).Start();
            }
        }
    }

    /// <summary>The warm pool of a runtime, for the benchmark and tests.</summary>
    public KeptSandboxPool? Pool(string runtime) => _pools.GetValueOrDefault(runtime);

    /// <summary>Kills every kept sandbox and warm pool of this host.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var pool in _pools.Values)
        {
            await pool.DisposeAsync();
        }

        foreach (var id in _kept.Keys)
        {
            if (_kept.TryRemove(id, out var sandbox))
            {
                await sandbox.DisposeAsync();
            }
        }
    }

    private KeptSandboxPool PoolOf(SandboxRuntimeBase runtime) =>
        _pools.GetOrAdd(runtime.Name, _ => new KeptSandboxPool(
            runtime,
            new KeptSandboxSpec { DiskMiB = _options.KeptDiskMiB, MaxProcesses = _options.KeptMaxProcesses },
            _options.WarmKeptSandboxes.GetValueOrDefault(runtime.Name)));

    /// <summary>The named runtime when it is offered here, works and isolates at least as asked; refused with the reason otherwise.</summary>
    public async Task<ISandboxRuntime> SelectAsync(IsolationLevel level, string? runtimeName, CancellationToken cancellationToken)
    {
        if (level == IsolationLevel.None && !_options.AllowUnisolated)
        {
            throw new ProviderException(Id, ErrorCodes.IsolationUnavailable, "isolation level 'none' is not allowed on this host");
        }

        try
        {
            return await new RuntimeSelector(_runtimes).SelectAsync(level, runtimeName, cancellationToken);
        }
        catch (SandstormException e)
        {
            throw new ProviderException(Id, e.Code, e.Message);
        }
    }

    /// <summary>
    /// The router never places such runs here (capabilities: languages, no network); this is the backstop, before anything
    /// starts: a language this machine cannot run, or packages to install, which needs network the sandboxes here lack.
    /// </summary>
    private static void RefuseWhatCannotRunHere(ExecutionSpec spec)
    {
        if (Languages.Unavailable(spec.Language) is { } unavailable)
        {
            throw new ProviderException(Id, ErrorCodes.NotSupported, unavailable) { NeverStarted = true };
        }

        if (RunIntent.RequirementsOf(spec.Language, spec.Files) > 0)
        {
            throw new ProviderException(Id, ErrorCodes.NotSupported, "the local sandboxes have no network, so requirements cannot be installed here") { NeverStarted = true };
        }
    }

    /// <summary>
    /// Takes a Falco alert to the sandbox it names on this machine (by host-side id, Falco's short id, or a pid in it), if
    /// it is this tenant's: kills it at once when <see cref="ShieldAlertDelivery.Kill"/>; the finding then comes back
    /// with the run's result (or the kept sandbox's <see cref="KeptSandbox.Quarantined"/>).
    /// </summary>
    public async Task<ShieldAlertMatch?> DeliverAsync(ShieldAlertDelivery alert, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(alert);
        // A pid names a process of the machine Falco runs on: only this machine's, when the alert says which it is.
        var pids = alert.Hostname is null || string.Equals(alert.Hostname, Environment.MachineName, StringComparison.OrdinalIgnoreCase) ? alert.Pids : [];
        var sandbox = alert.SandboxIds.Select(RunningSandboxes.Find).FirstOrDefault(s => s is not null)
            ?? pids.Select(RunningSandboxes.FindByPid).FirstOrDefault(s => s is not null);

        // Another tenant's sandbox is not this alert's to touch: as if it were not there.
        if (sandbox is null || sandbox.TenantId != alert.TenantId)
        {
            return null;
        }

        var recorded = await sandbox.ReportAsync(alert.Finding, alert.Kill);
        return new ShieldAlertMatch
        {
            Provider = Id,
            Action = recorded.Quarantined ? "killed" : "reported",
            SandboxId = sandbox.Id,
            RunId = sandbox.RunId,
            Kept = sandbox.Kept,
            Finding = recorded,
        };
    }

    private async Task<ProviderCapabilities> ProbeAsync()
    {
        // The monitor attaches in the background at start: coverage is known once it has.
        if (_shield is not null)
        {
            await _shield.Started;
        }

        var probes = await Task.WhenAll(_runtimes.Select(async r => (Runtime: r, Probe: await r.ProbeAsync(CancellationToken.None))));
        return Capabilities with
        {
            Runtimes = [.. probes.Where(p => p.Probe.Works).Select(p => new RuntimeOffer(p.Runtime.Name, p.Runtime.Isolation)
            {
                Shield = _shield?.CoverageOf(p.Runtime.Name).Level ?? ShieldCoverageLevel.None,
            })],
        };
    }
}
