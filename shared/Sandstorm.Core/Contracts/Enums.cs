namespace Sandstorm.Core.Contracts;

/// <summary>How strongly a run is isolated from the host; each level names a family of runtimes.</summary>
public enum IsolationLevel
{
    /// <summary>Trusted code: a plain process with limits.</summary>
    None,
    /// <summary>Container-grade: namespaces, seccomp, read-only root, no network, cgroup limits.</summary>
    Standard,
    /// <summary>User-space kernel (gVisor).</summary>
    Strong,
    /// <summary>Hardware virtualisation (microVM).</summary>
    Maximum,
}

/// <summary>Security monitoring tier of a run.</summary>
public enum SecurityTier
{
    Basic,
    Shield,
}

/// <summary>What the router optimises for.</summary>
public enum RoutingStrategy
{
    OptimizeCost,
    OptimizeLatency,
    Balanced,
    /// <summary>Least predicted grams of CO₂e (grid intensity of the region at the hour × predicted energy).</summary>
    OptimizeCarbon,
}

/// <summary>Lifecycle of a run.</summary>
public enum RunStatus
{
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Quarantined,
}

/// <summary>Helpers over <see cref="RunStatus"/>.</summary>
public static class RunStatusExtensions
{
    /// <summary>True once the run can change no more.</summary>
    public static bool IsTerminal(this RunStatus status) => status is not (RunStatus.Queued or RunStatus.Running);
}
