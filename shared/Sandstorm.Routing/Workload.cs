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

    public RoutingStrategy Strategy { get; init; } = RoutingStrategy.Balanced;

    public RunConstraints? Constraints { get; init; }

    public string? RuntimePreference { get; init; }

    /// <summary>Derives the workload of a run request.</summary>
    public static Workload From(RunRequest request) => new()
    {
        Language = request.Language,
        CodeLength = request.Code.Length,
        Requirements = CountRequirements(request.Files),
        Files = request.Files?.Count ?? 0,
        Cpu = request.Cpu,
        MemoryMiB = request.Memory,
        TimeoutMs = request.Timeout,
        IsolationLevel = request.IsolationLevel,
        Strategy = request.Strategy,
        Constraints = request.Constraints,
        RuntimePreference = request.RuntimePreference,
    };

    private static int CountRequirements(IReadOnlyDictionary<string, string>? files)
    {
        if (files is null || !files.TryGetValue("requirements.txt", out var text))
        {
            return 0;
        }

        return text.Split('\n').Count(line => line.Trim() is { Length: > 0 } l && !l.StartsWith('#'));
    }
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
