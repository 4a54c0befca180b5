using Sandstorm.Providers.Cloud;

namespace Sandstorm.Providers.Aca;

/// <summary>Azure Container Apps dynamic sessions settings (<c>Sandstorm:Providers:Aca</c>). Auth is a managed identity, not a key.</summary>
public sealed class AcaOptions : CloudProviderOptions
{
    public const string Section = "Sandstorm:Providers:Aca";

    public const string Audience = "https://dynamicsessions.io/.default";

    /// <summary>The session pool's management endpoint, e.g. https://{region}.dynamicsessions.io/subscriptions/.../sessionPools/{name}.</summary>
    public Uri? PoolManagementEndpoint { get; set; }

    public string ApiVersion { get; set; } = "2024-02-02-preview";

    /// <summary>
    /// Price of a code-interpreter session-hour (USD). Consumption billing is per allocated session; the default is an
    /// estimate, not a checked published figure (docs/providers.md): set the price of your region.
    /// </summary>
    public double SessionHourPrice { get; set; } = 0.03;

    /// <summary>A session stays allocated (and billed) this long after its last call; the pool's cooldown period.</summary>
    public TimeSpan SessionCooldown { get; set; } = TimeSpan.FromSeconds(300);

    public override bool IsConfigured => Enabled && PoolManagementEndpoint is not null;
}
