using System.Text.Json.Nodes;

namespace Sandstorm.Infra.Tests;

/// <summary>
/// Runs the Bicep CLI once for the whole test run: lint every .bicep/.bicepparam file, build main.bicep,
/// build every .bicepparam. The three runs go in parallel (a few seconds each).
/// </summary>
public sealed class InfraCompilation : IAsyncLifetime
{
    private string? outputDirectory;

    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string InfraDirectory => Path.Combine(RepositoryRoot, "infra-bicep");

    /// <summary>Parameter files, relative to infra-bicep, that must compile.</summary>
    public static IReadOnlyList<string> ParameterFiles { get; } = ["main.bicepparam", "env/dev.bicepparam", "env/prod.bicepparam"];

    internal BicepResult Lint { get; private set; } = null!;

    internal BicepResult Build { get; private set; } = null!;

    internal BicepResult BuildParams { get; private set; } = null!;

    private ArmTemplate? template;

    /// <summary>The compiled ARM template of main.bicep; fails the calling test with Bicep's output if it did not compile.</summary>
    internal ArmTemplate Template => template ?? throw new InvalidOperationException("main.bicep did not compile: " + Build);

    /// <summary>Compiled parameter values by parameter file (relative path), or null when it did not compile.</summary>
    internal IReadOnlyDictionary<string, JsonObject?> Parameters { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        outputDirectory = Directory.CreateTempSubdirectory("sandstorm-bicep-").FullName;
        var lint = BicepCli.RunAsync(InfraDirectory, "lint", "--pattern", "**/*.bicep*");
        var build = BicepCli.RunAsync(InfraDirectory, "build", "main.bicep", "--stdout");
        var buildParams = BicepCli.RunAsync(InfraDirectory, "build-params", "--pattern", "**/*.bicepparam", "--outdir", outputDirectory);
        await Task.WhenAll(lint, build, buildParams);

        Lint = await lint;
        Build = await build;
        BuildParams = await buildParams;
        if (Build.ExitCode == 0)
        {
            template = new ArmTemplate(JsonNode.Parse(Build.StandardOutput)!.AsObject());
        }
        Parameters = ParameterFiles.ToDictionary(
            file => file,
            file =>
            {
                var json = Path.Combine(outputDirectory, Path.ChangeExtension(file, ".json"));
                return File.Exists(json) ? JsonNode.Parse(File.ReadAllText(json))!["parameters"]!.AsObject() : null;
            });
    }

    public Task DisposeAsync()
    {
        if (outputDirectory is not null && Directory.Exists(outputDirectory))
        {
            Directory.Delete(outputDirectory, recursive: true);
        }
        return Task.CompletedTask;
    }

    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "infra-bicep", "main.bicep")))
            {
                return directory.FullName;
            }
        }
        throw new DirectoryNotFoundException($"No infra-bicep/main.bicep above {AppContext.BaseDirectory}");
    }
}

[CollectionDefinition(Name)]
public sealed class InfraCollection : ICollectionFixture<InfraCompilation>
{
    public const string Name = "infra";
}
