using System.Text.Json.Nodes;
using Sandstorm.Core.Configuration;

namespace Sandstorm.Infra.Tests;

/// <summary>
/// The function app's settings against <see cref="SandstormSettings"/>: every setting the app reads is set,
/// nothing unknown is set, secrets are Key Vault references, and the host uses identity-based storage.
/// </summary>
[Collection(InfraCollection.Name)]
public sealed class AppSettingsTests(InfraCompilation infra)
{
    private const string KeyVaultReferencePrefix = "[format('@Microsoft.KeyVault(SecretUri={0}secrets/{1}/)', parameters('keyVaultUri'), parameters('providerSecretNames').";

    private ArmResource App => infra.Template.Single("Microsoft.Web/sites");

    private IReadOnlyDictionary<string, string> Settings =>
        App.Property("siteConfig.appSettings")!.AsArray()
            .ToDictionary(s => s!["name"]!.GetValue<string>(), s => s!["value"]!.GetValue<string>(), StringComparer.Ordinal);

    private ArmResource MainModule(string parameterName) =>
        Assert.Single(infra.Template.OfType("Microsoft.Resources/deployments"), m => m.ModuleParameter(parameterName) is not null);

    [Fact]
    public void AppSettings_SetEverySettingTheAppRequires()
    {
        var missing = SandstormSettings.Required.Except(Settings.Keys).ToList();
        Assert.True(missing.Count == 0, "Not set by infra-bicep: " + string.Join(", ", missing));
    }

    [Fact]
    public void AppSettings_SetNoSandstormSettingTheAppDoesNotDeclare()
    {
        var unknown = Settings.Keys.Where(k => k.StartsWith(SandstormSettings.SectionName + "__", StringComparison.Ordinal))
            .Except(SandstormSettings.Required).ToList();
        Assert.True(unknown.Count == 0, "Not in SandstormSettings.Required: " + string.Join(", ", unknown));
    }

    [Fact]
    public void AppSettings_NoDuplicateNames()
    {
        var names = App.Property("siteConfig.appSettings")!.AsArray().Select(s => s!["name"]!.GetValue<string>()).ToList();
        Assert.Equal(names.Count, names.Distinct(StringComparer.OrdinalIgnoreCase).Count());
    }

    [Fact]
    public void AppSettings_SecretsAreKeyVaultReferences()
    {
        Assert.NotEmpty(SandstormSettings.Secrets);
        foreach (var secret in SandstormSettings.Secrets)
        {
            Assert.StartsWith(KeyVaultReferencePrefix, Settings[secret], StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AppSettings_OnlySecretsAreKeyVaultReferences()
    {
        var references = Settings.Where(s => s.Value.Contains("@Microsoft.KeyVault(", StringComparison.Ordinal)).Select(s => s.Key);
        Assert.Equal(SandstormSettings.Secrets.Order(StringComparer.Ordinal), references.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AppSettings_SecretNamesDefaultToNamesNotValues()
    {
        var names = infra.Template.Root["parameters"]!["providerSecretNames"]!["defaultValue"]!.AsObject();
        Assert.Equal(SandstormSettings.Secrets.Count, names.Count);
        foreach (var (_, value) in names)
        {
            // Key Vault secret names: 1-127 alphanumerics and dashes.
            Assert.Matches("^[a-z0-9-]{1,127}$", value!.GetValue<string>());
        }
    }

    [Fact]
    public void AppSettings_HostStorageIsIdentityBased()
    {
        var settings = Settings;
        Assert.False(settings.ContainsKey("AzureWebJobsStorage"), "AzureWebJobsStorage as a connection string would need a key");
        Assert.Equal("managedidentity", settings["AzureWebJobsStorage__credential"]);
        Assert.Equal("[parameters('identityClientId')]", settings["AzureWebJobsStorage__clientId"]);
        Assert.Equal("[parameters('storageAccountName')]", settings["AzureWebJobsStorage__accountName"]);
        foreach (var service in new[] { "blob", "queue", "table" })
        {
            Assert.EndsWith($".primaryEndpoints.{service}]", settings[$"AzureWebJobsStorage__{service}ServiceUri"], StringComparison.Ordinal);
        }
    }

    [Fact]
    public void AppSettings_TelemetryUsesEntraId()
    {
        Assert.Equal("[format('ClientId={0};Authorization=AAD', parameters('identityClientId'))]", Settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]);
        Assert.False(Settings.ContainsKey("APPINSIGHTS_INSTRUMENTATIONKEY"));
    }

    [Fact]
    public void AppSettings_ApplicationInsightsConnectionStringIsTheComponentsOwn()
    {
        // The app exports its OpenTelemetry traces and metrics to Azure Monitor when this is set (docs/observability.md).
        Assert.Equal("[reference('appInsights').ConnectionString]", Settings[SandstormSettings.ApplicationInsightsConnectionString]);
        Assert.NotEmpty(infra.Template.OfType("Microsoft.Insights/components"));
    }

    [Theory]
    [InlineData("FUNCTIONS_WORKER_RUNTIME")]
    [InlineData("FUNCTIONS_EXTENSION_VERSION")]
    [InlineData("WEBSITE_RUN_FROM_PACKAGE")]
    [InlineData("WEBSITE_CONTENTAZUREFILECONNECTIONSTRING")]
    [InlineData("WEBSITE_CONTENTSHARE")]
    [InlineData("WEBSITE_NODE_DEFAULT_VERSION")]
    public void AppSettings_OmitSettingsFlexConsumptionRejects(string name)
    {
        Assert.False(Settings.ContainsKey(name));
    }

    [Fact]
    public void AppSettings_SignerIsKeyVaultAndNamesTheKey()
    {
        Assert.Equal(SandstormSettings.KeyVaultSigner, Settings[SandstormSettings.SigningSigner]);
        Assert.Equal("[parameters('signingKeyName')]", Settings[SandstormSettings.SigningKeyName]);
        Assert.Equal("[parameters('keyVaultUri')]", Settings[SandstormSettings.KeyVaultUri]);
        Assert.Equal("[parameters('identityClientId')]", Settings[SandstormSettings.IdentityClientId]);
    }

    [Fact]
    public void MainDefaults_MatchTheApplicationDefaults()
    {
        var parameters = infra.Template.Root["parameters"]!;
        Assert.Equal(SandstormSettings.DefaultBatchQueue, Default(parameters, "storageBatchQueueName"));
        Assert.Equal(SandstormSettings.DefaultBatchQueue, Default(parameters, "serviceBusBatchQueueName"));
        Assert.Equal(SandstormSettings.DefaultDurableHubName, Default(parameters, "durableHubName"));
        Assert.Equal(SandstormSettings.DefaultReoptimizeSchedule, Default(parameters, "reoptimizeSchedule"));
    }

    [Fact]
    public void FunctionApp_ModuleWiresSettingsFromTheResourcesItCreated()
    {
        var module = MainModule("keyVaultUri");
        Assert.Equal("[reference('keyVault').outputs.uri.value]", module.ModuleParameter("keyVaultUri")!.GetValue<string>());
        Assert.Equal("[reference('serviceBus').outputs.fullyQualifiedNamespace.value]", module.ModuleParameter("serviceBusNamespace")!.GetValue<string>());
        Assert.Equal("[reference('sessionPool').outputs.poolManagementEndpoint.value]", module.ModuleParameter("sessionPoolManagementEndpoint")!.GetValue<string>());
        Assert.Equal("[reference('identity').outputs.clientId.value]", module.ModuleParameter("identityClientId")!.GetValue<string>());
    }

    private static string Default(JsonNode parameters, string name) => parameters[name]!["defaultValue"]!.GetValue<string>();
}
