namespace Sandstorm.Core.Configuration;

/// <summary>
/// The one list of settings Sandstorm reads, in the environment-variable form app settings use
/// (<c>Sandstorm__Section__Key</c>, read through <c>IConfiguration</c> as <c>Sandstorm:Section:Key</c>).
/// </summary>
/// <remarks>
/// A test compares <see cref="Required"/> with the app settings infra-bicep gives the function app, both ways,
/// and another checks every name declared here is listed in <see cref="Required"/> or <see cref="LocalOnly"/>.
/// Adding a setting therefore means adding it to the template too, or saying why Azure does not need it.
/// </remarks>
public static class SandstormSettings
{
    /// <summary>The configuration section all Sandstorm settings live under.</summary>
    public const string SectionName = "Sandstorm";

    /// <summary>Key Vault data-plane URI, e.g. <c>https://kv-x.vault.azure.net/</c>.</summary>
    public const string KeyVaultUri = "Sandstorm__KeyVault__Uri";

    /// <summary>Which signer signs provenance: <see cref="KeyVaultSigner"/> in Azure, a local key elsewhere.</summary>
    public const string SigningSigner = "Sandstorm__Signing__Signer";

    /// <summary>Name of the ES256 signing key in Key Vault (versionless: the latest version signs).</summary>
    public const string SigningKeyName = "Sandstorm__Signing__KeyName";

    /// <summary>Service Bus namespace host name, e.g. <c>sb-x.servicebus.windows.net</c>.</summary>
    public const string ServiceBusFullyQualifiedNamespace = "Sandstorm__ServiceBus__FullyQualifiedNamespace";

    /// <summary>Service Bus queue batch submissions go to.</summary>
    public const string ServiceBusBatchQueue = "Sandstorm__ServiceBus__BatchQueue";

    /// <summary>Storage queue that carries batch work items to the function app.</summary>
    public const string StorageBatchQueue = "Sandstorm__Storage__BatchQueue";

    /// <summary>E2B API base URL.</summary>
    public const string E2BBaseUrl = "Sandstorm__Providers__E2B__BaseUrl";

    /// <summary>Daytona API base URL.</summary>
    public const string DaytonaBaseUrl = "Sandstorm__Providers__Daytona__BaseUrl";

    /// <summary>Modal API base URL.</summary>
    public const string ModalBaseUrl = "Sandstorm__Providers__Modal__BaseUrl";

    /// <summary>Pool management endpoint of the Azure Container Apps dynamic sessions pool.</summary>
    public const string AcaPoolManagementEndpoint = "Sandstorm__Providers__Aca__PoolManagementEndpoint";

    /// <summary>Client id of the user-assigned managed identity the app authenticates as.</summary>
    public const string IdentityClientId = "Sandstorm__Identity__ClientId";

    /// <summary>NCRONTAB schedule (six fields, seconds first) of the reoptimize timer.</summary>
    public const string ReoptimizeSchedule = "Sandstorm__Reoptimize__Schedule";

    /// <summary>Durable Functions task hub name.</summary>
    public const string DurableHubName = "Sandstorm__Durable__HubName";

    /// <summary>E2B API key (secret: a Key Vault reference in Azure).</summary>
    public const string E2BApiKey = "Sandstorm__Providers__E2B__ApiKey";

    /// <summary>Daytona API key (secret: a Key Vault reference in Azure).</summary>
    public const string DaytonaApiKey = "Sandstorm__Providers__Daytona__ApiKey";

    /// <summary>Modal token id (secret: a Key Vault reference in Azure).</summary>
    public const string ModalTokenId = "Sandstorm__Providers__Modal__TokenId";

    /// <summary>Modal token secret (secret: a Key Vault reference in Azure).</summary>
    public const string ModalTokenSecret = "Sandstorm__Providers__Modal__TokenSecret";

    /// <summary>
    /// Standard variable (not one of Sandstorm's own): the Application Insights connection string. When set, traces,
    /// metrics and logs also go to Azure Monitor, signed in with the app's identity (docs/observability.md).
    /// </summary>
    public const string ApplicationInsightsConnectionString = "APPLICATIONINSIGHTS_CONNECTION_STRING";

    /// <summary>
    /// Standard OpenTelemetry variable: when set (with the other <c>OTEL_EXPORTER_OTLP_*</c> variables), traces and
    /// metrics are exported by OTLP to that endpoint, on every host and on edge agents.
    /// </summary>
    public const string OtlpEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>Value of <see cref="SigningSigner"/> that selects the Key Vault signer.</summary>
    public const string KeyVaultSigner = "keyvault";

    /// <summary>Default of <see cref="StorageBatchQueue"/> and <see cref="ServiceBusBatchQueue"/>.</summary>
    public const string DefaultBatchQueue = "sandstorm-batches";

    /// <summary>Default of <see cref="DurableHubName"/>.</summary>
    public const string DefaultDurableHubName = "SandstormHub";

    /// <summary>Default of <see cref="ReoptimizeSchedule"/>: every 30 minutes.</summary>
    public const string DefaultReoptimizeSchedule = "0 */30 * * * *";

    /// <summary>Settings that come from Key Vault references in Azure and must never be literal values.</summary>
    public static IReadOnlyList<string> Secrets { get; } =
    [
        E2BApiKey,
        DaytonaApiKey,
        ModalTokenId,
        ModalTokenSecret,
    ];

    /// <summary>Every setting the Azure deployment must set (including <see cref="Secrets"/>).</summary>
    public static IReadOnlyList<string> Required { get; } =
    [
        KeyVaultUri,
        SigningSigner,
        SigningKeyName,
        ServiceBusFullyQualifiedNamespace,
        ServiceBusBatchQueue,
        StorageBatchQueue,
        E2BBaseUrl,
        DaytonaBaseUrl,
        ModalBaseUrl,
        AcaPoolManagementEndpoint,
        IdentityClientId,
        ReoptimizeSchedule,
        DurableHubName,
        .. Secrets,
    ];

    /// <summary>Settings only a local host reads (none yet); Azure deployments leave them unset.</summary>
    public static IReadOnlyList<string> LocalOnly { get; } = [];

    /// <summary>
    /// The <c>IConfiguration</c> key of a setting: <c>Sandstorm__KeyVault__Uri</c> becomes <c>Sandstorm:KeyVault:Uri</c>.
    /// </summary>
    public static string ConfigurationKey(string setting)
    {
        ArgumentException.ThrowIfNullOrEmpty(setting);
        return setting.Replace("__", ":", StringComparison.Ordinal);
    }
}
