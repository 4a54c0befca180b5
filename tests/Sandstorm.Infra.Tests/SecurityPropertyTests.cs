using System.Text.Json.Nodes;

namespace Sandstorm.Infra.Tests;

/// <summary>Security properties of the compiled template: identity only, no keys, locked-down defaults.</summary>
[Collection(InfraCollection.Name)]
public sealed class SecurityPropertyTests(InfraCompilation infra)
{
    private ArmTemplate Template => infra.Template;

    [Theory]
    [InlineData("listKeys(")]
    [InlineData("listConnectionStrings(")]
    [InlineData("listSecrets(")]
    [InlineData("listAccountSas(")]
    [InlineData("listServiceSas(")]
    [InlineData("listCredentials(")]
    [InlineData("AccountKey=")]
    [InlineData("SharedAccessKey")]
    [InlineData("DefaultEndpointsProtocol")]
    public void Template_ContainsNoKeyMaterial(string forbidden)
    {
        Assert.DoesNotContain(forbidden, Template.Text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Template_HasNoSecureParametersOrOutputs()
    {
        // Nothing secret goes in or comes out: outputs are ids, names and URIs.
        var templates = new[] { Template.Root }.Concat(
            Template.OfType("Microsoft.Resources/deployments").Select(m => m.Node["properties"]!["template"]!.AsObject()));
        foreach (var template in templates)
        {
            foreach (var section in new[] { "parameters", "outputs" })
            {
                foreach (var (name, declaration) in template[section]?.AsObject() ?? [])
                {
                    var type = declaration!["type"]?.GetValue<string>() ?? "";
                    Assert.False(type.StartsWith("secure", StringComparison.OrdinalIgnoreCase), $"{section} {name} is {type}");
                    if (section == "outputs")
                    {
                        foreach (var word in new[] { "secret", "password", "connectionstring", "token" })
                        {
                            Assert.DoesNotContain(word, name, StringComparison.OrdinalIgnoreCase);
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void Storage_SharedKeysAndPublicBlobAccessDisabled_Tls12()
    {
        var account = Template.Single("Microsoft.Storage/storageAccounts");
        Assert.False(account.Property("allowSharedKeyAccess")!.GetValue<bool>());
        Assert.False(account.Property("allowBlobPublicAccess")!.GetValue<bool>());
        Assert.Equal("TLS1_2", account.Property("minimumTlsVersion")!.GetValue<string>());
        Assert.True(account.Property("supportsHttpsTrafficOnly")!.GetValue<bool>());
        Assert.True(account.Property("defaultToOAuthAuthentication")!.GetValue<bool>());
    }

    [Theory]
    [InlineData("Microsoft.Storage/storageAccounts/blobServices")]
    [InlineData("Microsoft.Storage/storageAccounts/queueServices")]
    [InlineData("Microsoft.Storage/storageAccounts/tableServices")]
    [InlineData("Microsoft.Storage/storageAccounts/queueServices/queues")]
    public void Storage_DeclaresServicesDurableFunctionsAndBatchesUse(string type)
    {
        Assert.Single(Template.OfType(type));
    }

    [Fact]
    public void Storage_DeploymentContainerIsPrivate()
    {
        var container = Template.Single("Microsoft.Storage/storageAccounts/blobServices/containers");
        Assert.Equal("None", container.Property("publicAccess")!.GetValue<string>());
    }

    [Fact]
    public void KeyVault_RbacAuthorisationAndPurgeProtection()
    {
        var vault = Template.Single("Microsoft.KeyVault/vaults");
        Assert.True(vault.Property("enableRbacAuthorization")!.GetValue<bool>());
        Assert.True(vault.Property("enablePurgeProtection")!.GetValue<bool>());
        Assert.True(vault.Property("enableSoftDelete")!.GetValue<bool>());
        Assert.Null(vault.Property("accessPolicies"));
        Assert.False(vault.Property("enabledForTemplateDeployment")!.GetValue<bool>());
    }

    [Fact]
    public void SigningKey_EcP256_SignAndVerifyOnly_NotExportable()
    {
        var key = Template.Single("Microsoft.KeyVault/vaults/keys");
        Assert.Equal("EC", key.Property("kty")!.GetValue<string>());
        Assert.Equal("P-256", key.Property("curveName")!.GetValue<string>());
        var operations = key.Property("keyOps")!.AsArray().Select(o => o!.GetValue<string>()).Order(StringComparer.Ordinal);
        Assert.Equal(["sign", "verify"], operations);
        Assert.False(key.Property("attributes.exportable")!.GetValue<bool>());
    }

    [Fact]
    public void SigningKey_RotationPolicyRotatesAndNotifies()
    {
        var key = Template.Single("Microsoft.KeyVault/vaults/keys");
        var actions = key.Property("rotationPolicy.lifetimeActions")!.AsArray()
            .Select(a => a!["action"]!["type"]!.GetValue<string>());
        Assert.Equal(["notify", "rotate"], actions.Order(StringComparer.Ordinal));
        Assert.NotNull(key.Property("rotationPolicy.attributes.expiryTime"));
    }

    [Fact]
    public void ServiceBus_LocalAuthDisabled_Tls12()
    {
        var ns = Template.Single("Microsoft.ServiceBus/namespaces");
        Assert.True(ns.Property("disableLocalAuth")!.GetValue<bool>());
        Assert.Equal("1.2", ns.Property("minimumTlsVersion")!.GetValue<string>());
    }

    [Fact]
    public void ServiceBus_BatchQueueDeadLetters()
    {
        var queue = Template.Single("Microsoft.ServiceBus/namespaces/queues");
        Assert.True(queue.Property("deadLetteringOnMessageExpiration")!.GetValue<bool>());
        Assert.NotNull(queue.Property("maxDeliveryCount"));
        Assert.Empty(Template.OfType("Microsoft.ServiceBus/namespaces/authorizationRules"));
        Assert.Empty(Template.OfType("Microsoft.ServiceBus/namespaces/queues/authorizationRules"));
    }

    [Fact]
    public void Monitoring_LocalAuthDisabled_WorkspaceBased()
    {
        var insights = Template.Single("Microsoft.Insights/components");
        Assert.True(insights.Property("DisableLocalAuth")!.GetValue<bool>());
        Assert.NotNull(insights.Property("WorkspaceResourceId"));
        var workspace = Template.Single("Microsoft.OperationalInsights/workspaces");
        Assert.True(workspace.Property("features.disableLocalAuth")!.GetValue<bool>());
    }

    [Fact]
    public void SessionPool_DynamicPythonCodeInterpreter_EgressDisabled()
    {
        var pool = Template.Single("Microsoft.App/sessionPools");
        Assert.Equal("Dynamic", pool.Property("poolManagementType")!.GetValue<string>());
        Assert.Equal("PythonLTS", pool.Property("containerType")!.GetValue<string>());
        Assert.Equal("EgressDisabled", pool.Property("sessionNetworkConfiguration.status")!.GetValue<string>());
    }

    [Fact]
    public void FunctionApp_FlexConsumptionPlan()
    {
        var plan = Template.Single("Microsoft.Web/serverfarms");
        Assert.Equal("FC1", plan.Node["sku"]!["name"]!.GetValue<string>());
        Assert.Equal("FlexConsumption", plan.Node["sku"]!["tier"]!.GetValue<string>());
        Assert.True(plan.Property("reserved")!.GetValue<bool>());
    }

    [Fact]
    public void FunctionApp_DotnetIsolated10_DeploysFromBlobWithTheIdentity()
    {
        var app = Template.Single("Microsoft.Web/sites");
        Assert.Equal("functionapp,linux", app.Node["kind"]!.GetValue<string>());
        Assert.Equal("dotnet-isolated", app.Property("functionAppConfig.runtime.name")!.GetValue<string>());
        Assert.Equal("10.0", app.Property("functionAppConfig.runtime.version")!.GetValue<string>());
        Assert.Equal("blobContainer", app.Property("functionAppConfig.deployment.storage.type")!.GetValue<string>());
        Assert.Equal("UserAssignedIdentity", app.Property("functionAppConfig.deployment.storage.authentication.type")!.GetValue<string>());
        Assert.Null(app.Property("functionAppConfig.deployment.storage.authentication.storageAccountConnectionStringName"));
    }

    [Fact]
    public void FunctionApp_RunsAsUserAssignedIdentity_HttpsOnly()
    {
        var app = Template.Single("Microsoft.Web/sites");
        Assert.Equal("UserAssigned", app.Node["identity"]!["type"]!.GetValue<string>());
        Assert.Single(app.Node["identity"]!["userAssignedIdentities"]!.AsObject());
        Assert.Equal("[parameters('identityId')]", app.Property("keyVaultReferenceIdentity")!.GetValue<string>());
        Assert.True(app.Property("httpsOnly")!.GetValue<bool>());
        Assert.Equal("Disabled", app.Property("siteConfig.ftpsState")!.GetValue<string>());
        Assert.Equal("1.2", app.Property("siteConfig.minTlsVersion")!.GetValue<string>());
    }

    [Fact]
    public void FunctionApp_BasicPublishingCredentialsDisabled()
    {
        var policies = Template.OfType("Microsoft.Web/sites/basicPublishingCredentialsPolicies");
        Assert.Equal(2, policies.Count);
        Assert.All(policies, p => Assert.False(p.Property("allow")!.GetValue<bool>()));
    }

    [Fact]
    public void Identity_ExactlyOneUserAssignedIdentity()
    {
        Assert.Single(Template.OfType("Microsoft.ManagedIdentity/userAssignedIdentities"));
        Assert.DoesNotContain(Template.Resources, r => r.Node["identity"]?["type"]?.GetValue<string>()?.Contains("SystemAssigned", StringComparison.Ordinal) == true);
    }
}
