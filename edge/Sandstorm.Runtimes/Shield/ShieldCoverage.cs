using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes.Shield;

/// <summary>The coverage of one sandbox (or of the monitor as a whole), with the reason when it is not full.</summary>
public sealed record ShieldCoverage(ShieldCoverageLevel Level, string? Reason)
{
    public static ShieldCoverage None(string reason) => new(ShieldCoverageLevel.None, reason);

    public override string ToString() => Reason is null ? Level.ToString().ToLowerInvariant() : $"{Level.ToString().ToLowerInvariant()}: {Reason}";
}
