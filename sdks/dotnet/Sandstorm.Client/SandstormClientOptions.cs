using Azure.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Client;

/// <summary>Options of a <see cref="SandstormClient"/>: Azure.Core's retry, transport and diagnostics, plus run defaults.</summary>
public class SandstormClientOptions : ClientOptions
{
    /// <summary>Routing strategy of every run and sandbox that does not give its own.</summary>
    public RoutingStrategy? DefaultStrategy { get; set; }

    /// <summary>Security tier of every run and sandbox that does not give its own.</summary>
    public SecurityTier? DefaultSecurityTier { get; set; }

    /// <summary>How long the API holds a run request open waiting for the outcome before the client polls (at most 300 s).</summary>
    public TimeSpan RunWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Interval between polls of a run or batch that has not settled.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(500);
}
