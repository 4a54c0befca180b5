namespace Sandstorm.Infra.Tests;

/// <summary>azure.yaml points azd at infra-bicep and at a function app the template tags for it.</summary>
[Collection(InfraCollection.Name)]
public sealed class AzdTests(InfraCompilation infra)
{
    private static readonly string[] AzureYaml =
        File.ReadAllLines(Path.Combine(InfraCompilation.RepositoryRoot, "azure.yaml"))
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .ToArray();

    [Theory]
    [InlineData("provider: bicep")]
    [InlineData("path: infra-bicep")]
    [InlineData("module: main")]
    [InlineData("api:")]
    [InlineData("project: ./functions/Sandstorm.Functions")]
    [InlineData("language: dotnet")]
    [InlineData("host: function")]
    public void AzureYaml_DeclaresInfraAndService(string line)
    {
        Assert.Contains(line, AzureYaml);
    }

    [Fact]
    public void AzureYaml_ProjectAndParameterFileExist()
    {
        Assert.True(File.Exists(Path.Combine(InfraCompilation.RepositoryRoot, "functions", "Sandstorm.Functions", "Sandstorm.Functions.csproj")));
        // azd reads <module>.bicepparam from the infra path.
        Assert.True(File.Exists(Path.Combine(InfraCompilation.InfraDirectory, "main.bicepparam")));
    }

    [Fact]
    public void FunctionApp_TaggedForTheAzdService()
    {
        var app = infra.Template.Single("Microsoft.Web/sites");
        Assert.Contains("'azd-service-name', parameters('serviceName')", app.Node["tags"]!.GetValue<string>(), StringComparison.Ordinal);
        var module = Assert.Single(infra.Template.OfType("Microsoft.Resources/deployments"), m => m.ModuleParameter("serviceName") is not null);
        Assert.Equal("api", module.ModuleParameter("serviceName")!.GetValue<string>());
    }

    [Theory]
    [InlineData("SANDSTORM_CONTROL_PLANE_URL")]
    [InlineData("AZURE_FUNCTION_APP_NAME")]
    [InlineData("AZURE_RESOURCE_GROUP")]
    [InlineData("AZURE_KEY_VAULT_NAME")]
    [InlineData("SANDSTORM_SIGNING_KEY_NAME")]
    public void Main_OutputsWhatTheDeploymentGuideUses(string output)
    {
        Assert.NotNull(infra.Template.Root["outputs"]![output]);
    }
}
