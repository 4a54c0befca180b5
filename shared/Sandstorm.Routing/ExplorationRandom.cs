namespace Sandstorm.Routing;

/// <summary>The random source of exploration, injected so a seed replays the same decisions.</summary>
public interface IExplorationRandom
{
    /// <summary>Uniform in [0, 1).</summary>
    double NextDouble();

    /// <summary>Uniform in [0, <paramref name="maxExclusive"/>).</summary>
    int Next(int maxExclusive);
}

/// <summary>A seeded <see cref="Random"/> behind a lock (decisions run concurrently).</summary>
public sealed class SeededExplorationRandom(int seed) : IExplorationRandom
{
    private readonly Random _random = new(seed);
    private readonly Lock _gate = new();

    public double NextDouble()
    {
        lock (_gate)
        {
            return _random.NextDouble();
        }
    }

    public int Next(int maxExclusive)
    {
        lock (_gate)
        {
            return _random.Next(maxExclusive);
        }
    }
}
