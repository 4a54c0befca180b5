namespace Sandstorm.Core.Contracts;

/// <summary>What a caller asks to run, with intent instead of placement (v1 SDK field names).</summary>
public sealed record RunRequest
{
    public string Code { get; init; } = "";

    public string Language { get; init; } = "";

    /// <summary>Input files by relative path; contents are UTF-8 text.</summary>
    public IReadOnlyDictionary<string, string>? Files { get; init; }

    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>vCPUs (0.1–16).</summary>
    public double Cpu { get; init; } = 1;

    /// <summary>Memory in MiB (64–16384).</summary>
    public int Memory { get; init; } = 512;

    /// <summary>Wall-clock timeout in milliseconds (1 s–15 min).</summary>
    public int Timeout { get; init; } = 30_000;

    public IsolationLevel IsolationLevel { get; init; } = IsolationLevel.Standard;

    /// <summary>Preferred runtime name (bwrap, runc, gvisor, ...), honoured when it meets the isolation level.</summary>
    public string? RuntimePreference { get; init; }

    public SecurityTier SecurityTier { get; init; } = SecurityTier.Basic;

    public RoutingStrategy Strategy { get; init; } = RoutingStrategy.Balanced;

    public RunConstraints? Constraints { get; init; }
}
