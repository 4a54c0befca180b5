namespace Sandstorm.Providers.Cloud;

/// <summary>
/// Settings every sandbox-cloud adapter shares, bound from <c>Sandstorm:Providers:&lt;Name&gt;</c>.
/// Secrets (<see cref="ApiKey"/> and the like) come from environment variables locally
/// (<c>Sandstorm__Providers__E2B__ApiKey</c>) and from Key Vault references in Azure.
/// </summary>
public class CloudProviderOptions
{
    /// <summary>Set false to keep a configured provider out of this deployment.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The provider's API root; point it at a local stand-in to test.</summary>
    public Uri? BaseUrl { get; set; }

    public string? ApiKey { get; set; }

    /// <summary>Regions this account may place sandboxes in; the first is the default.</summary>
    public List<string> Regions { get; set; } = [];

    /// <summary>Upper bound for creating a sandbox (one attempt).</summary>
    public TimeSpan ProvisionTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Upper bound for short control calls (delete, timeout refresh, lookups), per attempt.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Added to the run's own timeout to bound an execution call.</summary>
    public TimeSpan ExecutionGrace { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Retries of idempotent calls on transient failures.</summary>
    public int MaxRetries { get; set; } = 3;

    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(300);

    /// <summary>Longest Retry-After we wait; a longer one fails the call (the router can place the run elsewhere).</summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(20);

    public double BreakerFailureRatio { get; set; } = 0.5;

    public int BreakerMinimumThroughput { get; set; } = 8;

    public TimeSpan BreakerSamplingDuration { get; set; } = TimeSpan.FromSeconds(60);

    public TimeSpan BreakerBreakDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>True when there is enough configuration to talk to the provider.</summary>
    public virtual bool IsConfigured => Enabled && BaseUrl is not null && !string.IsNullOrWhiteSpace(ApiKey);

    /// <summary>An address under <see cref="BaseUrl"/>, which may have a path of its own (Daytona's <c>/api</c>).</summary>
    public Uri Endpoint(string relative) => new(new Uri(BaseUrl!.ToString().TrimEnd('/') + "/"), relative);

    /// <summary>The region a lease reports when the request names none this provider knows.</summary>
    public string RegionFor(string? requested, IReadOnlyList<string> defaults)
    {
        var regions = Regions.Count > 0 ? (IReadOnlyList<string>)Regions : defaults;
        return requested is not null && regions.Contains(requested, StringComparer.OrdinalIgnoreCase) ? requested : regions[0];
    }
}
