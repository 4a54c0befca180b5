using System.Text.Json;
using Sandstorm.Api;
using Sandstorm.Orchestrations;

namespace Sandstorm.Functions.Tests;

/// <summary>
/// Reads the functions.metadata the Functions SDK generates at build time: the Azure host can only run what it lists,
/// so every API route, orchestrator and activity must be there with the right trigger.
/// </summary>
public sealed class FunctionsMetadataTests
{
    private static readonly JsonElement[] Functions = Load();

    [Fact]
    public void Metadata_HttpFunctions_MatchTheSharedRouteTable()
    {
        var http = Functions
            .Select(f => (Name: f.GetProperty("name").GetString()!, Trigger: Trigger(f)))
            .Where(f => f.Trigger.GetProperty("type").GetString() == "httpTrigger")
            .Select(f => (f.Name, Method: f.Trigger.GetProperty("methods")[0].GetString()!.ToUpperInvariant(), Route: f.Trigger.GetProperty("route").GetString()!))
            .OrderBy(f => f.Name)
            .ToList();
        Assert.Equal(ApiRoutes.All.OrderBy(r => r.Function).ToList(), http);
    }

    [Fact]
    public void Metadata_Orchestrators_HaveOrchestrationTriggers()
    {
        foreach (var name in SandstormTasks.Orchestrators)
        {
            Assert.Equal("orchestrationTrigger", Trigger(Function(name)).GetProperty("type").GetString());
        }
    }

    [Fact]
    public void Metadata_Activities_HaveActivityTriggers()
    {
        Assert.Superset(
            new HashSet<string> { "RouteActivity", "ProvisionActivity", "ExecuteActivity", "MonitorActivity", "SettleActivity" },
            SandstormTasks.Activities.ToHashSet());
        foreach (var name in SandstormTasks.Activities)
        {
            Assert.Equal("activityTrigger", Trigger(Function(name)).GetProperty("type").GetString());
        }
    }

    [Fact]
    public void Metadata_RunEndpointsThatStartOrSignalRuns_HaveADurableClient()
    {
        foreach (var name in new[] { "SubmitRun", "CancelRun", "RunSandbox" })
        {
            Assert.Contains(Function(name).GetProperty("bindings").EnumerateArray(), b => b.GetProperty("type").GetString() == "durableClient");
        }
    }

    [Fact]
    public void HostJson_HasEmptyRoutePrefixAndAnExplicitHubName()
    {
        var host = JsonDocument.Parse(File.ReadAllText(Path.Combine(OutputDirectory(), "host.json"))).RootElement;
        var extensions = host.GetProperty("extensions");
        Assert.Equal("", extensions.GetProperty("http").GetProperty("routePrefix").GetString());
        Assert.Equal("SandstormHub", extensions.GetProperty("durableTask").GetProperty("hubName").GetString());
    }

    private static JsonElement Function(string name) =>
        Functions.SingleOrDefault(f => f.GetProperty("name").GetString() == name) is { ValueKind: JsonValueKind.Object } f
            ? f
            : throw new Xunit.Sdk.XunitException($"functions.metadata has no function '{name}'");

    private static JsonElement Trigger(JsonElement function) =>
        function.GetProperty("bindings").EnumerateArray().First(b => b.GetProperty("type").GetString()!.EndsWith("Trigger", StringComparison.Ordinal));

    private static JsonElement[] Load() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(OutputDirectory(), "functions.metadata"))).RootElement.EnumerateArray().ToArray();

    /// <summary>The Functions app's build output for the configuration these tests were built with.</summary>
    internal static string OutputDirectory()
    {
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var (framework, configuration) = (testOutput.Name, testOutput.Parent!.Name);
        for (var dir = testOutput; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "functions", "Sandstorm.Functions", "bin", configuration, framework);
            if (File.Exists(Path.Combine(candidate, "functions.metadata")))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("functions.metadata not found: build functions/Sandstorm.Functions");
    }
}
