namespace Sandstorm.Core.Contracts;

/// <summary>What a runtime executes: the code, its inputs and its limits. The one execution contract of all runtimes.</summary>
public sealed record ExecutionSpec
{
    public required string Language { get; init; }

    public required string Code { get; init; }

    public IReadOnlyDictionary<string, string>? Files { get; init; }

    /// <summary>
    /// A file among <see cref="Files"/> to run instead of <see cref="Code"/> (a run whose code was a bare file name such as
    /// <c>your_ai_code.py</c>); null runs the code from the language's main file.
    /// </summary>
    public string? EntryPoint { get; init; }

    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    public double Cpu { get; init; } = 1;

    public int MemoryMiB { get; init; } = 512;

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Cap per output stream; beyond it output is dropped and marked truncated.</summary>
    public int OutputLimitBytes { get; init; } = ExecutionLimits.DefaultOutputLimitBytes;

    public IsolationLevel IsolationLevel { get; init; } = IsolationLevel.None;

    /// <summary>Most processes the sandbox may hold at once.</summary>
    public int MaxProcesses { get; init; } = ExecutionLimits.DefaultMaxProcesses;

    /// <summary>Shield's monitoring of this execution (tenant rules, threshold, egress); null: not watched.</summary>
    public ShieldSpec? Shield { get; init; }

    /// <summary>
    /// The run this execution serves and its tenant (set by the control plane; no effect on how it runs): where it executes,
    /// they tie the sandbox's host-side id to the run, so a Falco alert naming the sandbox reaches the run.
    /// </summary>
    public string? RunId { get; init; }

    public string? TenantId { get; init; }
}

/// <summary>The outcome of one execution, whatever the runtime.</summary>
public sealed record ExecutionResult
{
    public required string Runtime { get; init; }

    public string Stdout { get; init; } = "";

    public string Stderr { get; init; } = "";

    public bool StdoutTruncated { get; init; }

    public bool StderrTruncated { get; init; }

    /// <summary>Exit code of the main process; null when it was killed by a signal we sent.</summary>
    public int? ExitCode { get; init; }

    public long WallTimeMs { get; init; }

    public long CpuTimeMs { get; init; }

    public long PeakMemoryBytes { get; init; }

    public bool OomKilled { get; init; }

    public bool TimedOut { get; init; }

    /// <summary>Host-side id of the sandbox (its cgroup and container are named after it), when the runtime has one.</summary>
    public string? ExecutionId { get; init; }

    /// <summary>What Shield saw: for every watched execution, and for any execution a Falco alert quarantined.</summary>
    public ShieldReport? Shield { get; init; }

    /// <summary>Isolation level the runtime that ran it gives (set where it executed; null where nobody said).</summary>
    public IsolationLevel? Isolation { get; init; }

    public bool Truncated => StdoutTruncated || StderrTruncated;
}

/// <summary>Defaults shared by every runtime.</summary>
public static class ExecutionLimits
{
    public const int DefaultOutputLimitBytes = 1024 * 1024;
    public const int DefaultMaxProcesses = 64;
}
