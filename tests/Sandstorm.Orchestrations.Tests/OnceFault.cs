namespace Sandstorm.Orchestrations.Tests;

/// <summary>Throws once at a named point, as a crash between two steps would.</summary>
public sealed class OnceFault(string point) : IFaultInjector
{
    private int _fired;

    public int Hits => _fired;

    public ValueTask AtAsync(string name)
    {
        if (name == point && Interlocked.Exchange(ref _fired, 1) == 0)
        {
            throw new InvalidOperationException($"injected fault at {point}");
        }

        return ValueTask.CompletedTask;
    }
}
