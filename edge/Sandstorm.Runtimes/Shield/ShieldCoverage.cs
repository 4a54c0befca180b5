namespace Sandstorm.Runtimes.Shield;

/// <summary>How much of a sandbox's behaviour the monitor sees.</summary>
public enum ShieldCoverageLevel
{
    /// <summary>Nothing is monitored (no eBPF, not root, an unsupported runtime...): such a run is not a Shield run.</summary>
    None,

    /// <summary>Some events are seen, not all (the reason says which are missing).</summary>
    Partial,

    /// <summary>Every event of the documented set is seen.</summary>
    Full,
}

/// <summary>The coverage of one sandbox (or of the monitor as a whole), with the reason when it is not full.</summary>
public sealed record ShieldCoverage(ShieldCoverageLevel Level, string? Reason)
{
    public static ShieldCoverage None(string reason) => new(ShieldCoverageLevel.None, reason);

    public override string ToString() => Reason is null ? Level.ToString().ToLowerInvariant() : $"{Level.ToString().ToLowerInvariant()}: {Reason}";
}
