namespace Sandstorm.Runtimes;

/// <summary>Result of probing a runtime: whether it works here and, when it does not, why.</summary>
public sealed record RuntimeProbe(bool Works, string? Reason = null)
{
    /// <summary>How a working runtime bounds memory, pids and CPU here (cgroups, or rlimits inside the sandbox).</summary>
    public string? Limits { get; init; }

    public static RuntimeProbe Working { get; } = new(true);

    public static RuntimeProbe NotWorking(string reason) => new(false, reason);
}
