using Sandstorm.Core.Contracts;

namespace Sandstorm.Routing.Simulation;

/// <summary>A provider of a simulated or recorded market: one runtime and the isolation levels it honours.</summary>
public sealed record MarketProvider
{
    public required string Id { get; init; }

    public required string Runtime { get; init; }

    /// <summary>Levels this runtime can serve (a stronger runtime may serve weaker levels).</summary>
    public required IReadOnlyList<IsolationLevel> Isolation { get; init; }

    public required IReadOnlyList<string> Regions { get; init; }

    public required PriceSheet Price { get; init; }

    /// <summary>Optional; all supported languages when absent.</summary>
    public IReadOnlyList<string>? Languages { get; init; }
}

/// <summary>The routing-relevant part of a run request in a trace (no code: its length stands for it).</summary>
public sealed record TraceRequest
{
    public required string Language { get; init; }

    public int CodeLength { get; init; }

    public int Requirements { get; init; }

    public int Files { get; init; }

    public double Cpu { get; init; } = 1;

    public int Memory { get; init; } = 512;

    public int Timeout { get; init; } = 30_000;

    public IsolationLevel IsolationLevel { get; init; } = IsolationLevel.Standard;

    public RoutingStrategy Strategy { get; init; } = RoutingStrategy.Balanced;

    public bool Stateful { get; init; }

    public RunConstraints? Constraints { get; init; }

    public Workload ToWorkload() => new()
    {
        Language = Language,
        CodeLength = CodeLength,
        Requirements = Requirements,
        Files = Files,
        Cpu = Cpu,
        MemoryMiB = Memory,
        TimeoutMs = Timeout,
        IsolationLevel = IsolationLevel,
        Stateful = Stateful,
        Strategy = Strategy,
        Constraints = Constraints,
    };
}

/// <summary>What running a request on one candidate did. A failed run's cost is still paid.</summary>
public sealed record TraceOutcome(bool Ok, double LatencyMs, double CostUsd);

/// <summary>One line after the first: a request with its per-candidate outcomes, or a price change.</summary>
public abstract record TraceEvent(DateTimeOffset Time);

/// <summary>A request; a candidate missing from <see cref="Outcomes"/> was unavailable at that moment.</summary>
public sealed record TraceRequestEvent(long Seq, DateTimeOffset Time, TraceRequest Request, IReadOnlyDictionary<string, TraceOutcome> Outcomes) : TraceEvent(Time);

/// <summary>A list price in force from <see cref="TraceEvent.Time"/> on.</summary>
public sealed record TracePriceEvent(DateTimeOffset Time, string Provider, PriceSheet Price) : TraceEvent(Time);

/// <summary>A whole trace: the market, then the events in file order.</summary>
public sealed record MarketTrace(IReadOnlyList<MarketProvider> Providers, IReadOnlyList<TraceEvent> Events)
{
    /// <summary>The market as provider capabilities: one <see cref="RuntimeOffer"/> per honoured level, entries of one id merged.</summary>
    public static IReadOnlyList<ProviderCapabilities> Capabilities(IReadOnlyList<MarketProvider> providers) =>
        providers
            .GroupBy(p => p.Id, StringComparer.Ordinal)
            .Select(g => new ProviderCapabilities
            {
                Provider = g.Key,
                Runtimes = g.SelectMany(p => p.Isolation.Select(level => new RuntimeOffer(p.Runtime, level))).ToList(),
                Regions = g.SelectMany(p => p.Regions).Distinct(StringComparer.Ordinal).ToList(),
                Languages = g.SelectMany(p => p.Languages ?? Core.Contracts.Languages.Supported).Distinct(StringComparer.Ordinal).ToList(),
                Price = g.First().Price,
            })
            .ToList();
}

/// <summary>A trace line that does not follow the format; the message names the line.</summary>
public sealed class TraceFormatException : FormatException
{
    public TraceFormatException(int line, string message)
        : base($"trace line {line}: {message}")
    {
        Line = line;
    }

    public TraceFormatException()
    {
    }

    public TraceFormatException(string message)
        : base(message)
    {
    }

    public TraceFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public int Line { get; }
}
