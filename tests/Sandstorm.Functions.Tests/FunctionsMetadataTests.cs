using Microsoft.Extensions.DependencyInjection;
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
            .Where(f => f.Trigger.GetProperty("type").GetString() == "httpTrigger" && f.Name != ApiRoutes.UnmatchedFunction)
            .Select(f => (f.Name, Method: f.Trigger.GetProperty("methods")[0].GetString()!.ToUpperInvariant(), Route: f.Trigger.GetProperty("route").GetString()!))
            .OrderBy(f => f.Name)
            .ToList();
        Assert.Equal(ApiRoutes.All.OrderBy(r => r.Function).ToList(), http);
    }

    [Fact]
    public void Metadata_UnmatchedRoute_TakesEveryMethodAndSortsAfterEveryOtherHttpFunction()
    {
        var trigger = Trigger(Function(ApiRoutes.UnmatchedFunction));
        // No methods listed: the Functions host gives it every method.
        Assert.False(trigger.TryGetProperty("methods", out var methods) && methods.ValueKind == JsonValueKind.Array && methods.GetArrayLength() > 0);
        Assert.Equal(ApiRoutes.UnmatchedRoute, trigger.GetProperty("route").GetString());
        // The host tries function routes in the order of their names: the catch-all must come last.
        var names = Functions.Select(f => f.GetProperty("name").GetString()!).Where(n => n != ApiRoutes.UnmatchedFunction);
        Assert.All(names, n => Assert.True(string.Compare(n, ApiRoutes.UnmatchedFunction, StringComparison.OrdinalIgnoreCase) < 0, $"{n} sorts after the catch-all"));
    }

    [Theory]
    [InlineData("v1/nope", true)]
    [InlineData("v1/runs", true)]
    [InlineData("", true)]
    [InlineData("admin/host/status", false)]
    [InlineData("runtime/webhooks/durabletask/instances", false)]
    public void UnmatchedRoute_Constraint_LeavesTheHostsOwnPathsAlone(string path, bool taken)
    {
        var pattern = Microsoft.AspNetCore.Routing.Patterns.RoutePatternFactory.Parse(ApiRoutes.UnmatchedRoute);
        var parameter = Assert.Single(pattern.Parameters);
        Assert.True(parameter.IsCatchAll);
        var policy = Assert.Single(parameter.ParameterPolicies).Content!;
        Assert.StartsWith("regex(", policy, StringComparison.Ordinal);
        var regex = new System.Text.RegularExpressions.Regex(policy["regex(".Length..^1], System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant);
        Assert.Equal(taken, regex.IsMatch(path));
    }

    [Theory]
    [InlineData("/mcp", "POST")]
    [InlineData("/mcp", "GET")]
    [InlineData("/openapi/v1.json", "GET")]
    [InlineData("/docs", "GET")]
    public async Task Unmatched_HostOnlyPath_Answers501ProblemJson(string path, string method)
    {
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        http.Request.Method = method;
        http.Request.Path = path;
        http.Response.Body = new MemoryStream();
        http.RequestServices = new ServiceCollection().AddLogging().AddProblemDetails().BuildServiceProvider();

        await RouteProblems.Unmatched(http).ExecuteAsync(http);

        Assert.Equal(501, http.Response.StatusCode);
        Assert.Equal("application/problem+json", http.Response.ContentType);
        http.Response.Body.Position = 0;
        var problem = JsonDocument.Parse(http.Response.Body).RootElement;
        Assert.Equal("https://sandstorm.dev/problems/not-supported", problem.GetProperty("type").GetString());
        Assert.Contains("not supported", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/v1/runs", "PUT", 405, "POST, GET")]
    [InlineData("/v1/runs/run_1", "POST", 405, "GET, DELETE")]
    [InlineData("/v1/usage", "DELETE", 405, "GET")]
    [InlineData("/v1/nope", "GET", 404, null)]
    [InlineData("/", "POST", 404, null)]
    public async Task Unmatched_Path_AnswersProblemJson(string path, string method, int status, string? allow)
    {
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        http.Request.Method = method;
        http.Request.Path = path;
        http.Response.Body = new MemoryStream();
        http.RequestServices = new ServiceCollection().AddLogging().AddProblemDetails().BuildServiceProvider();

        await RouteProblems.Unmatched(http).ExecuteAsync(http);

        Assert.Equal(status, http.Response.StatusCode);
        Assert.Equal("application/problem+json", http.Response.ContentType);
        Assert.Equal(allow ?? "", http.Response.Headers.Allow.ToString());
        http.Response.Body.Position = 0;
        var problem = JsonDocument.Parse(http.Response.Body).RootElement;
        Assert.Equal(status == 404 ? "https://sandstorm.dev/problems/not-found" : "https://sandstorm.dev/problems/method-not-allowed", problem.GetProperty("type").GetString());
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
