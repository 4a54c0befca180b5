using System.Collections.Concurrent;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Providers.Health;

/// <summary>One <see cref="ProviderHealthWindow"/> per provider; the <see cref="IProviderHealthSource"/> of the cloud adapters.</summary>
public sealed class ProviderHealthMonitor : IProviderHealthSource
{
    private readonly ConcurrentDictionary<string, ProviderHealthWindow> _windows = new(StringComparer.OrdinalIgnoreCase);
    private readonly TimeProvider _time;

    public ProviderHealthMonitor(TimeProvider time)
    {
        _time = time;
    }

    public IReadOnlyCollection<string> Providers => _windows.Keys.ToArray();

    /// <summary>The window of a provider, created on first use.</summary>
    public ProviderHealthWindow For(string provider) => _windows.GetOrAdd(provider, _ => new ProviderHealthWindow(_time));

    public ProviderHealth GetHealth(string provider) =>
        _windows.TryGetValue(provider, out var window) ? window.Snapshot() : ProviderHealth.Unknown;

    public ProviderHealth GetHealth(string provider, string tenantId) =>
        _windows.TryGetValue(provider, out var window) ? window.Snapshot(tenantId) : ProviderHealth.Unknown;
}
