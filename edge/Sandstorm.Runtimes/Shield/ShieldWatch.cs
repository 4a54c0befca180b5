using System.Threading.Channels;
using Sandstorm.Shield;

namespace Sandstorm.Runtimes.Shield;

/// <summary>What the monitor needs to watch one sandbox.</summary>
public sealed record ShieldWatchRequest
{
    /// <summary>The sandbox (execution) id: runsc's container id, the name of its cgroup.</summary>
    public required string SandboxId { get; init; }

    /// <summary>The runtime's name (bwrap, runc, podman, gvisor, process): it decides where events come from.</summary>
    public required string Runtime { get; init; }

    /// <summary>The sandbox's group in the cgroup v1 <c>pids</c> hierarchy; null without cgroups (then nothing is seen).</summary>
    public string? PidsCgroup { get; init; }

    public ShieldPolicy Policy { get; init; } = new();

    /// <summary>Kills every process of the sandbox; true once the last one is gone.</summary>
    public Func<Task<bool>>? Quarantine { get; init; }
}

/// <summary>
/// One sandbox under watch: its coverage, its findings as they come, whether it was quarantined. Dispose at clean-up
/// (after the sandbox's processes ended); what it found stays readable.
/// </summary>
public sealed class ShieldWatch : IAsyncDisposable
{
    private readonly Channel<Finding> channel = Channel.CreateUnbounded<Finding>(new UnboundedChannelOptions { SingleReader = false });
    private readonly List<Finding> findings = [];
    private readonly Lock gate = new();
    private readonly Action<ShieldWatch>? unregister;
    private readonly Func<Task>? drain;
    private int disposing;
    private Task quarantine = Task.CompletedTask;
    private Finding? quarantineFinding;
    private int quarantineStarted;
    private int disposed;
    private long events;

    internal ShieldWatch(ShieldWatchRequest request, ShieldCoverage coverage, RuleEngine engine, ulong cgroupId, Action<ShieldWatch>? unregister, Func<Task>? drain)
    {
        this.drain = drain;
        Request = request;
        Coverage = coverage;
        Engine = engine;
        CgroupId = cgroupId;
        this.unregister = unregister;
    }

    public string SandboxId => Request.SandboxId;

    public ShieldCoverage Coverage { get; }

    /// <summary>Findings so far, in the order they were made.</summary>
    public IReadOnlyList<Finding> Findings
    {
        get
        {
            lock (gate)
            {
                return [.. findings];
            }
        }
    }

    /// <summary>Findings as they are made; completes when the watch is disposed.</summary>
    public ChannelReader<Finding> Stream => channel.Reader;

    /// <summary>True once a finding at or above the threshold started the quarantine.</summary>
    public bool Quarantined => Volatile.Read(ref quarantineStarted) != 0;

    /// <summary>The finding that quarantined the sandbox (with its latency), once the quarantine finished.</summary>
    public Finding? QuarantineFinding => Volatile.Read(ref quarantineFinding);

    /// <summary>Events of this sandbox the engine evaluated.</summary>
    public long Events => Interlocked.Read(ref events);

    internal ShieldWatchRequest Request { get; }

    internal RuleEngine Engine { get; }

    internal ulong CgroupId { get; }

    internal bool IsDisposed => Volatile.Read(ref disposed) != 0;

    /// <summary>Waits for the quarantine (if one started) to finish.</summary>
    public Task QuarantineCompletion => Volatile.Read(ref quarantine);

    internal void Evaluate(ShieldEvent e)
    {
        if (IsDisposed)
        {
            return;
        }

        Interlocked.Increment(ref events);
        foreach (var finding in Engine.Evaluate(e))
        {
            if (finding.Priority.IsAtLeast(Request.Policy.QuarantineThreshold) && Request.Quarantine is not null
                && Interlocked.Exchange(ref quarantineStarted, 1) == 0)
            {
                // Off the event reader's thread: the reader keeps draining while the sandbox is killed.
                Volatile.Write(ref quarantine, Task.Run(() => QuarantineAsync(finding, e)));
                continue;
            }

            _ = PublishAsync(finding);
        }
    }

    private async Task QuarantineAsync(Finding finding, ShieldEvent e)
    {
        TimeSpan? latency = null;
        try
        {
            if (await Request.Quarantine!())
            {
                var now = System.Diagnostics.Stopwatch.GetTimestamp();
                var from = e.MonotonicTimestamp ?? now;
                latency = TimeSpan.FromTicks(Math.Max(0, (now - from) * TimeSpan.TicksPerSecond / System.Diagnostics.Stopwatch.Frequency));
            }
        }
        catch (Exception)
        {
            // The kill failed: the finding still stands, without a latency; the runtime's own clean-up kills again.
        }

        var published = finding with { QuarantineLatency = latency };
        Volatile.Write(ref quarantineFinding, published);
        await PublishAsync(published);
    }

    private async Task PublishAsync(Finding finding)
    {
        lock (gate)
        {
            findings.Add(finding);
        }

        channel.Writer.TryWrite(finding);
        if (Request.Policy.OnFinding is { } callback)
        {
            try
            {
                await callback(finding);
            }
            catch (Exception)
            {
                // A failing subscriber must not stop monitoring.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposing, 1) != 0)
        {
            return;
        }

        // Events of the sandbox's last moments may still be on their way: let them in before the watch closes.
        if (drain is not null)
        {
            try
            {
                await drain();
            }
            catch (Exception)
            {
            }
        }

        Volatile.Write(ref disposed, 1);
        unregister?.Invoke(this);
        await QuarantineCompletion;
        channel.Writer.TryComplete();
    }
}
