using System.Diagnostics;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes.Shield;
using Sandstorm.Shield;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// Shield's side of a kept sandbox for its whole life: the monitor's watch (from its start, or from when a warm one is
/// claimed with a policy), the outside findings (Falco alerts) through its <see cref="RunningSandbox"/>, and the one
/// quarantine, whichever of the two kills it first.
/// </summary>
internal sealed class KeptShield
{
    private readonly Func<ShieldPolicy, ShieldWatch?> _watch;
    private readonly TaskCompletionSource<ShieldFinding> _quarantined = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private ShieldWatch? _current;
    private long _watchedSince;

    public KeptShield(RunningSandbox running, Func<ShieldPolicy, ShieldWatch?> watch)
    {
        Running = running;
        _watch = watch;
        _ = running.Quarantined.ContinueWith(t => _quarantined.TrySetResult(t.Result), TaskContinuationOptions.OnlyOnRanToCompletion | TaskContinuationOptions.ExecuteSynchronously);
    }

    public RunningSandbox Running { get; }

    public ShieldWatch? Watch
    {
        get
        {
            lock (_gate)
            {
                return _current;
            }
        }
    }

    public Task<ShieldFinding> Quarantined => _quarantined.Task;

    /// <summary>Starts watching with <paramref name="policy"/>; false when a watch already runs (one policy per sandbox).</summary>
    public bool Start(ShieldPolicy policy)
    {
        lock (_gate)
        {
            if (_current is not null)
            {
                return false;
            }
        }

        ShieldWatch? holder = null;
        var original = policy.OnFinding;
        var watch = _watch(policy with
        {
            OnFinding = async finding =>
            {
                if (holder is { } w && ReferenceEquals(w.QuarantineFinding, finding))
                {
                    _quarantined.TrySetResult(Contract(finding, w.Findings.ToList().IndexOf(finding), quarantined: true));
                }

                if (original is not null)
                {
                    await original(finding);
                }
            },
        });
        if (watch is null)
        {
            return false;
        }

        holder = watch;
        lock (_gate)
        {
            _current = watch;
            _watchedSince = Stopwatch.GetTimestamp();
        }

        return true;
    }

    /// <summary>What Shield has seen so far (coverage, time watched, findings, quarantine).</summary>
    public ShieldReport Report()
    {
        ShieldWatch? watch;
        long since;
        lock (_gate)
        {
            (watch, since) = (_current, _watchedSince);
        }

        var coverage = watch?.Coverage ?? ShieldCoverage.None("the sandbox was not started with a Shield policy");
        var quarantining = watch?.QuarantineFinding;
        var findings = new List<ShieldFinding>();
        if (watch is not null)
        {
            findings.AddRange(watch.Findings.Select((f, i) => Contract(f, i, ReferenceEquals(f, quarantining))));
        }

        findings.AddRange(Running.ExternalFindings);
        return new ShieldReport
        {
            Coverage = coverage.Level,
            CoverageReason = coverage.Reason,
            MonitoredMs = watch is null || coverage.Level == ShieldCoverageLevel.None ? 0 : (long)Stopwatch.GetElapsedTime(since).TotalMilliseconds,
            Events = watch?.Events ?? 0,
            Quarantined = Quarantined.IsCompleted || watch?.Quarantined == true,
            Findings = findings,
        };
    }

    public async ValueTask DisposeAsync()
    {
        ShieldWatch? watch;
        lock (_gate)
        {
            watch = _current;
        }

        if (watch is not null)
        {
            await watch.DisposeAsync();
        }

        RunningSandboxes.Unregister(Running);
    }

    // Ids as an execution's: the sandbox and the finding's place in the watch's order.
    private ShieldFinding Contract(Finding finding, int index, bool quarantined) =>
        finding.ToContract($"{Running.Id}-{index + 1}", quarantined);
}
