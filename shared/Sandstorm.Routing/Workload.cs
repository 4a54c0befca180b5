using Sandstorm.Core.Contracts;

namespace Sandstorm.Routing;

/// <summary>The routing-relevant shape of a run (no code, no secrets).</summary>
public sealed record Workload
{
    public required string Language { get; init; }

    public int CodeLength { get; init; }

    /// <summary>Declared package requirements (e.g. lines of requirements.txt among the files).</summary>
    public int Requirements { get; init; }

    public int Files { get; init; }

    public double Cpu { get; init; } = 1;

    public int MemoryMiB { get; init; } = 512;

    public int TimeoutMs { get; init; } = 30_000;

    public IsolationLevel IsolationLevel { get; init; } = IsolationLevel.Standard;

    public bool Stateful { get; init; }

    /// <summary>The run installs packages before it starts, so only a placement with network can serve it.</summary>
    public bool NeedsNetwork { get; init; }

    /// <summary>The run asked for a GPU.</summary>
    public bool Gpu { get; init; }

    public RoutingStrategy Strategy { get; init; } = RoutingStrategy.Balanced;

    public RunConstraints? Constraints { get; init; }

    public string? RuntimePreference { get; init; }

    /// <summary>A bare-metal run: only placements booted from this image (<c>name[@sha256:…]</c>) can take it.</summary>
    public string? BootcImage { get; init; }

    /// <summary>The workload of a run's intent.</summary>
    public static Workload From(RunIntent intent) => new()
    {
        Language = intent.Language,
        CodeLength = intent.CodeLength,
        Requirements = intent.Requirements,
        NeedsNetwork = intent.Requirements > 0,
        Gpu = intent.Gpu,
        Files = intent.FileDigests.Count,
        Cpu = intent.Cpu,
        MemoryMiB = intent.Memory,
        TimeoutMs = intent.Timeout,
        IsolationLevel = intent.IsolationLevel,
        Strategy = intent.Strategy,
        Constraints = intent.Constraints,
        RuntimePreference = intent.RuntimePreference,
        BootcImage = intent.BootcImage,
    };
}

/// <summary>Everything a router may look at for one decision.</summary>
public sealed record RoutingContext(
    string RunId,
    string TenantId,
    Workload Workload,
    IReadOnlyList<ProviderCapabilities> Providers,
    IReadOnlyDictionary<string, ProviderHealth> Health,
    DateTimeOffset Now);

/// <summary>Chooses where a run goes. Implementations: rule-based, LightGBM.</summary>
public interface IRunRouter
{
    /// <summary>Returns the decision (chosen first, then the fallbacks in order) or throws <see cref="NoCandidateException"/>.</summary>
    ValueTask<RouteDecision> RouteAsync(RoutingContext context, CancellationToken cancellationToken);
}
