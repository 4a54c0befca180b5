using System.Text.Json;
using System.Text.Json.Nodes;

namespace Sandstorm.Infra.Tests;

[Collection(InfraCollection.Name)]
public sealed class BicepCompileTests(InfraCompilation infra)
{
    public static TheoryData<string, string> ParameterFilesWithProfile => new()
    {
        { "main.bicepparam", "dev" },
        { "env/dev.bicepparam", "dev" },
        { "env/prod.bicepparam", "prod" },
    };

    [Fact]
    public void Lint_EveryBicepAndParamFile_NoErrorsOrWarnings()
    {
        Assert.True(infra.Lint.ExitCode == 0, infra.Lint.ToString());
        Assert.Empty(infra.Lint.Diagnostics);
    }

    [Fact]
    public void Build_MainBicep_CompilesWithoutDiagnostics()
    {
        Assert.True(infra.Build.ExitCode == 0, infra.Build.ToString());
        Assert.Empty(infra.Build.Diagnostics);
        Assert.Contains("subscriptionDeploymentTemplate", infra.Template.Root["$schema"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.NotEmpty(infra.Template.Resources);
    }

    [Fact]
    public void BuildParams_AllParameterFiles_CompileWithoutDiagnostics()
    {
        Assert.True(infra.BuildParams.ExitCode == 0, infra.BuildParams.ToString());
        Assert.Empty(infra.BuildParams.Diagnostics);
    }

    [Theory]
    [MemberData(nameof(ParameterFilesWithProfile))]
    public void BuildParams_ParameterFile_SelectsItsProfile(string file, string expectedProfile)
    {
        var parameters = infra.Parameters[file];
        Assert.NotNull(parameters);
        Assert.False(string.IsNullOrWhiteSpace(parameters["environmentName"]?["value"]?.GetValue<string>()));
        Assert.False(string.IsNullOrWhiteSpace(parameters["location"]?["value"]?.GetValue<string>()));
        var profile = parameters["environmentType"]?["value"]?.GetValue<string>();
        Assert.Equal(expectedProfile, profile);
    }

    [Fact]
    public void BuildParams_AzdParameterFile_ReadsTheAzdEnvironment()
    {
        var parameters = infra.Parameters["main.bicepparam"]!;
        Assert.Equal(BicepCli.TestEnvironment["AZURE_ENV_NAME"], parameters["environmentName"]!["value"]!.GetValue<string>());
        Assert.Equal(BicepCli.TestEnvironment["AZURE_LOCATION"], parameters["location"]!["value"]!.GetValue<string>());
        Assert.Equal(BicepCli.TestEnvironment["AZURE_PRINCIPAL_ID"], parameters["operatorPrincipalId"]!["value"]!.GetValue<string>());
    }

    [Fact]
    public void BicepConfig_OnlyTurnsRulesUp()
    {
        var config = JsonNode.Parse(
            File.ReadAllText(Path.Combine(InfraCompilation.InfraDirectory, "bicepconfig.json")),
            documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip })!;
        Assert.True(config["analyzers"]!["core"]!["enabled"]!.GetValue<bool>());
        var rules = config["analyzers"]!["core"]!["rules"]!.AsObject();
        Assert.NotEmpty(rules);
        foreach (var (rule, setting) in rules)
        {
            var level = setting!["level"]!.GetValue<string>();
            Assert.True(level is "warning" or "error", $"{rule} is set to {level}");
        }
    }
}
