using System.Collections.Concurrent;
using System.Diagnostics;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes;

/// <summary>
/// One sandbox alive in this process (an execution from its set-up to its clean-up, or a kept sandbox), by its host-side
/// id: the name of its cgroup, scratch and container. Where a run executes, this is how a Falco alert naming the sandbox
/// (its id, Falco's 12-character short container id, or a pid inside it) reaches the run, and how the sandbox is killed.
/// </summary>
public sealed class RunningSandbox
{
    private readonly Func<Task<bool>> _kill;
    private readonly Lock _gate = new();
    private readonly List<ShieldFinding> _findings = [];
    private readonly TaskCompletionSource<ShieldFinding> _quarantined = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _killing;

    internal RunningSandbox(string id, string runtime, bool kept, string? runId, string? tenantId, Func<Task<bool>> kill)
    {
        Id = id;
        Runtime = runtime;
        Kept = kept;
        RunId = runId;
        TenantId = tenantId;
        _kill = kill;
    }

    /// <summary>Host-side id (cgroup, scratch and container name).</summary>
    public string Id { get; }

    public string Runtime { get; }

    /// <summary>True for a kept sandbox (many commands), false for one execution.</summary>
    public bool Kept { get; }

    /// <summary>The run it serves, as its spec said (null for kept sandboxes and specs that do not say).</summary>
    public string? RunId { get; }

    /// <summary>The tenant it serves, as its spec said (a warm kept sandbox learns it when claimed).</summary>
    public string? TenantId { get; internal set; }

    /// <summary>Findings reported from outside the runtime's own monitor (Falco alerts), in arrival order.</summary>
    public IReadOnlyList<ShieldFinding> ExternalFindings
    {
        get
        {
            lock (_gate)
            {
                return [.. _findings];
            }
        }
    }

    /// <summary>Completes with the finding once an outside finding has killed the sandbox (with its latency).</summary>
    public Task<ShieldFinding> Quarantined => _quarantined.Task;

    /// <summary>
    /// Records an outside finding (a Falco alert) and, when <paramref name="kill"/>, kills every process of the sandbox;
    /// the latency is measured from this call (the alert's arrival) to the last process gone. Returns the finding as
    /// recorded. A second killing finding is recorded without a second kill.
    /// </summary>
    public async Task<ShieldFinding> ReportAsync(ShieldFinding finding, bool kill)
    {
        ArgumentNullException.ThrowIfNull(finding);
        finding = finding with { SandboxId = Id };
        if (!kill || Interlocked.Exchange(ref _killing, 1) != 0)
        {
            Add(finding);
            return finding;
        }

        var started = Stopwatch.GetTimestamp();
        var gone = false;
        try
        {
            gone = await _kill();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            // The runtime's own clean-up kills again; the finding still stands, without a latency.
        }

        var recorded = finding with
        {
            Quarantined = true,
            QuarantineLatencyMs = gone ? Math.Round(Stopwatch.GetElapsedTime(started).TotalMilliseconds, 3) : null,
        };
        Add(recorded);
        _quarantined.TrySetResult(recorded);
        return recorded;
    }

    private void Add(ShieldFinding finding)
    {
        lock (_gate)
        {
            _findings.Add(finding);
        }
    }
}

/// <summary>The sandboxes alive in this process, found by id, Falco's short id, or a pid inside one.</summary>
public static class RunningSandboxes
{
    /// <summary>Length of the short container ids Falco prints.</summary>
    public const int ShortIdLength = 12;

    private static readonly ConcurrentDictionary<string, RunningSandbox> ById = new(StringComparer.Ordinal);

    /// <summary>Every sandbox alive now.</summary>
    public static IReadOnlyCollection<RunningSandbox> All => [.. ById.Values];

    /// <summary>The sandbox with this id, or the only one whose id starts with a 12-character short id.</summary>
    public static RunningSandbox? Find(string id)
    {
        if (string.IsNullOrEmpty(id))
        {
            return null;
        }

        if (ById.TryGetValue(id, out var exact))
        {
            return exact;
        }

        if (id.Length != ShortIdLength)
        {
            return null;
        }

        var matches = ById.Values.Where(s => s.Id.StartsWith(id, StringComparison.Ordinal)).Take(2).ToList();
        return matches.Count == 1 ? matches[0] : null;
    }

    /// <summary>The sandbox a host process belongs to, by the groups of its cgroup path (<c>/proc/PID/cgroup</c>); null when none.</summary>
    public static RunningSandbox? FindByPid(int pid)
    {
        if (pid <= 0)
        {
            return null;
        }

        string[] lines;
        try
        {
            lines = File.ReadAllLines($"/proc/{pid}/cgroup");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // "4:pids:/sandstorm/local/ss0123456789abcdef[/runc-sub-group]": any path segment may be the sandbox.
        foreach (var line in lines)
        {
            var path = line.Split(':', 3) is [_, _, var p] ? p : "";
            foreach (var segment in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                if (ById.TryGetValue(segment, out var sandbox))
                {
                    return sandbox;
                }
            }
        }

        return null;
    }

    internal static RunningSandbox Register(string id, string runtime, bool kept, string? runId, string? tenantId, Func<Task<bool>> kill)
    {
        var sandbox = new RunningSandbox(id, runtime, kept, runId, tenantId, kill);
        ById[id] = sandbox;
        return sandbox;
    }

    internal static void Unregister(RunningSandbox sandbox) =>
        ById.TryRemove(new KeyValuePair<string, RunningSandbox>(sandbox.Id, sandbox));
}
