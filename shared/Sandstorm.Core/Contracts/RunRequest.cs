namespace Sandstorm.Core.Contracts;

/// <summary>
/// What a caller asks to run, with intent instead of placement (v1 SDK field names). Whether <see cref="Cpu"/>,
/// <see cref="Memory"/>, <see cref="Timeout"/> and <see cref="IsolationLevel"/> were given is kept, so that their aliases in
/// <see cref="Constraints"/> can be checked against them; a canonical request (see
/// <c>RunRequestValidator.Normalize</c>) has every alias folded in.
/// </summary>
public sealed record RunRequest
{
    public const double DefaultCpu = 1;
    public const int DefaultMemory = 512;
    public const int DefaultTimeout = 30_000;

    private readonly double? _cpu;
    private readonly int? _memory;
    private readonly int? _timeout;
    private readonly IsolationLevel? _isolationLevel;

    /// <summary>The program; or the bare name of a file among <see cref="Files"/> to run (<c>your_ai_code.py</c>).</summary>
    public string Code { get; init; } = "";

    /// <summary>python, javascript, typescript or bash (alias shell); may be left out when <see cref="Code"/> names a file.</summary>
    public string Language { get; init; } = "";

    /// <summary>Input files by relative path; contents are UTF-8 text.</summary>
    public IReadOnlyDictionary<string, string>? Files { get; init; }

    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>
    /// pip packages to install before the run (v1 SDK); stored as a <c>requirements.txt</c> among the files. Installing
    /// needs network, which only some placements have.
    /// </summary>
    public IReadOnlyList<string>? Requirements { get; init; }

    /// <summary>Asks for a GPU (v1 SDK): refused while no configured provider offers one.</summary>
    public bool? Gpu { get; init; }

    /// <summary>A GPU model (v1 SDK); asks for a GPU like <see cref="Gpu"/>.</summary>
    public string? GpuType { get; init; }

    /// <summary>vCPUs (0.1–16).</summary>
    public double Cpu { get => _cpu ?? DefaultCpu; init => _cpu = value; }

    /// <summary>Memory in MiB (64–16384).</summary>
    public int Memory { get => _memory ?? DefaultMemory; init => _memory = value; }

    /// <summary>Wall-clock timeout in milliseconds (1 s–15 min).</summary>
    public int Timeout { get => _timeout ?? DefaultTimeout; init => _timeout = value; }

    public IsolationLevel IsolationLevel { get => _isolationLevel ?? IsolationLevel.Standard; init => _isolationLevel = value; }

    /// <summary>Preferred runtime name (bwrap, runc, gvisor, ...), honoured when it meets the isolation level.</summary>
    public string? RuntimePreference { get; init; }

    public SecurityTier SecurityTier { get; init; } = SecurityTier.Basic;

    public RoutingStrategy Strategy { get; init; } = RoutingStrategy.Balanced;

    public RunConstraints? Constraints { get; init; }

    /// <summary>
    /// Where the run goes: <c>bare-metal</c> places it only on edge agents booted from <see cref="BootcImage"/>; left out,
    /// the router chooses among every provider.
    /// </summary>
    public string? Deployment { get; init; }

    /// <summary>
    /// With <c>deployment: "bare-metal"</c>: the image (<c>name</c> or <c>name@sha256:…</c>) the agent's machine must be
    /// booted from, as its heartbeat reports it.
    /// </summary>
    public string? BootcImage { get; init; }

    // Methods, not properties: the wire has no such fields (a property ignored by the serializer would be accepted silently).

    /// <summary>True when the caller gave <see cref="Cpu"/>.</summary>
    public bool HasCpu() => _cpu is not null;

    /// <summary>True when the caller gave <see cref="Memory"/>.</summary>
    public bool HasMemory() => _memory is not null;

    /// <summary>True when the caller gave <see cref="Timeout"/>.</summary>
    public bool HasTimeout() => _timeout is not null;

    /// <summary>True when the caller gave <see cref="IsolationLevel"/>.</summary>
    public bool HasIsolationLevel() => _isolationLevel is not null;
}
