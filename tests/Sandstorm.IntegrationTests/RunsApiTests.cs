using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Sandstorm.Testing;

namespace Sandstorm.IntegrationTests;

/// <summary>The public run API over HTTP, against the real local host, Azure Storage engine and Azurite.</summary>
[Collection(LocalHostCollection.Name)]
public sealed class RunsApiTests(LocalHostFixture fixture)
{
    private const string Hello = """{"code":"print('hello', 6*7)","language":"python","isolationLevel":"none"}""";

    private LocalHostProcess Host => fixture.Host;

    [Fact]
    public async Task SubmitRun_WithWait_ReturnsTheResultAndSignedProvenance()
    {
        using var http = Host.Client();
        using var response = await http.PostAsync("v1/runs?wait=30", Json(Hello));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var run = await Body(response);
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal("hello 42\n", run.GetProperty("stdout").GetString());
        Assert.Equal(0, run.GetProperty("exitCode").GetInt32());
        Assert.Equal("local", run.GetProperty("provider").GetString());
        Assert.Equal("local/process/local", RouteKey(run));
        Assert.True(run.GetProperty("cost").GetProperty("total").GetDecimal() > 0);
        var id = run.GetProperty("id").GetString()!;
        Assert.Equal($"/v1/runs/{id}", response.Headers.Location!.OriginalString);

        using var bundle = await http.GetAsync($"v1/runs/{id}/provenance");
        Assert.Equal(HttpStatusCode.OK, bundle.StatusCode);
        var b = await Body(bundle);
        Assert.Equal(run.GetProperty("provenance").GetProperty("logIndex").GetInt64(), b.GetProperty("logIndex").GetInt64());
    }

    [Fact]
    public async Task SubmitRun_WithoutWait_Returns202ThenCompletes()
    {
        using var http = Host.Client();
        using var response = await http.PostAsync("v1/runs", Json(Hello));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var location = response.Headers.Location!.OriginalString.TrimStart('/');
        var done = await Poll.UntilAsync(
            async () => await Body(await http.GetAsync(location)),
            r => r.GetProperty("status").GetString() is not ("queued" or "running"),
            TimeSpan.FromSeconds(60),
            "the run to finish");
        Assert.Equal("succeeded", done.GetProperty("status").GetString());
    }

    [Fact]
    public async Task SubmitRun_DefaultRequestOnAFreshHost_RunsInABwrapSandboxWithoutAnAgent()
    {
        using var http = Host.Client();
        var run = await Body(await http.PostAsync("v1/runs?wait=30", Json("""{"code":"import os; print(os.getuid())","language":"python"}""")));

        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal("local", run.GetProperty("provider").GetString());
        // A standard sandbox (bwrap on a fresh host; the router learns which standard runtime is faster here).
        Assert.Contains(run.GetProperty("runtime").GetString(), new[] { "bwrap", "runc", "podman" });
        Assert.Equal("65534\n", run.GetProperty("stdout").GetString());
    }

    [Fact]
    public async Task SubmitRun_StrongIsolation_RunsUnderGvisorOnTheLocalHost()
    {
        using var http = Host.Client();
        var run = await Body(await http.PostAsync("v1/runs?wait=60", Json("""{"code":"import platform; print(platform.release())","language":"python","isolationLevel":"strong"}""")));

        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal("gvisor", run.GetProperty("runtime").GetString());
        // gVisor's user-space kernel reports its own release, never the host's.
        Assert.NotEqual(Environment.OSVersion.Version.ToString(), run.GetProperty("stdout").GetString()!.Trim());
    }

    [Fact]
    public async Task SubmitRun_UnisolatedWithoutTheTenantsOptIn_IsRefusedAndNothingIsStored()
    {
        var (tenant, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString, allowUnisolated: false);
        using var http = Host.Client(key);
        using var response = await http.PostAsync("v1/runs", Json("""{"code":"print(1)","language":"python","isolationLevel":"none"}"""));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        var problem = await Body(response);
        Assert.Equal("https://sandstorm.dev/problems/isolation-unavailable", problem.GetProperty("type").GetString());
        Assert.True(problem.GetProperty("errors").TryGetProperty("isolationLevel", out _));
        Assert.Equal(0, await Tenants.CountAsync(fixture.Azurite.ConnectionString, "runs", tenant));
    }

    [Theory]
    [InlineData("{not json", "malformed-json")]
    [InlineData("""{"code":5,"language":"python"}""", "malformed-json")]
    [InlineData("""{"code":"x","language":"python","isolationLevel":"extreme"}""", "malformed-json")]
    [InlineData("""{"code":"x","language":"cobol"}""", "validation-failed")]
    [InlineData("""{"code":"x","language":"python","timeout":-1}""", "validation-failed")]
    [InlineData("""{"code":"x","language":"python","memory":999999999}""", "validation-failed")]
    [InlineData("""{"code":"x","language":"python","cpu":0}""", "validation-failed")]
    [InlineData("""{"code":"","language":"python"}""", "validation-failed")]
    [InlineData("null", "malformed-json")]
    public async Task SubmitRun_BadInput_Is400ProblemAndPersistsNothing(string body, string type)
    {
        var (tenant, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);

        using var response = await http.PostAsync("v1/runs", Json(body));

        await AssertProblem(response, HttpStatusCode.BadRequest, type);
        Assert.Equal(0, await Tenants.CountAsync(fixture.Azurite.ConnectionString, "runs", tenant));
    }

    [Theory]
    [InlineData("""{"code":"x","language":"python","isolationLevle":"none"}""", "isolationLevle")]
    [InlineData("""{"code":"x","language":"python","constraints":{"maxCots":1}}""", "constraints.maxCots")]
    [InlineData("""{"code":"x","language":"python","isolationLevel":"strong","IsolationLevel":"none"}""", "IsolationLevel")]
    public async Task SubmitRun_UnknownOrRepeatedField_Is400NamingItAndPersistsNothing(string body, string field)
    {
        var (tenant, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);

        using var response = await http.PostAsync("v1/runs", Json(body));

        var problem = await AssertProblem(response, HttpStatusCode.BadRequest, "malformed-json");
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"the problem names '{field}': {problem}");
        Assert.Equal(0, await Tenants.CountAsync(fixture.Azurite.ConnectionString, "runs", tenant));
    }

    [Fact]
    public async Task SubmitRun_NestedDeeperThan64Levels_Is400()
    {
        using var http = Host.Client();
        var deep = new string('[', 70) + new string(']', 70);

        using var response = await http.PostAsync("v1/runs", Json($$"""{"code":"x","language":"python","files":{{deep}}}"""));

        await AssertProblem(response, HttpStatusCode.BadRequest, "malformed-json");
    }

    [Fact]
    public async Task SubmitRun_OversizedCode_IsRefusedAndPersistsNothing()
    {
        var (tenant, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);
        var body = JsonSerializer.Serialize(new { code = new string('#', (1024 * 1024) + 10), language = "python" });

        using var response = await http.PostAsync("v1/runs", Json(body));

        await AssertProblem(response, HttpStatusCode.BadRequest, "validation-failed");
        Assert.Equal(0, await Tenants.CountAsync(fixture.Azurite.ConnectionString, "runs", tenant));
    }

    [Fact]
    public async Task SubmitRun_WrongContentType_Is415()
    {
        using var http = Host.Client();
        using var response = await http.PostAsync("v1/runs", new StringContent(Hello, Encoding.UTF8, "text/plain"));
        await AssertProblem(response, HttpStatusCode.UnsupportedMediaType, "unsupported-media-type");
    }

    [Fact]
    public async Task Api_MissingOrWrongKey_Is401Problem()
    {
        using var anonymous = new HttpClient { BaseAddress = new Uri(Host.Url) };
        await AssertProblem(await anonymous.PostAsync("v1/runs", Json(Hello)), HttpStatusCode.Unauthorized, "unauthorized");
        using var wrong = Host.Client("sk_not-a-real-key");
        await AssertProblem(await wrong.GetAsync("v1/runs/run_x"), HttpStatusCode.Unauthorized, "unauthorized");
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("v1/health")).StatusCode);
    }

    [Fact]
    public async Task GetRun_OfAnotherTenant_Is404()
    {
        using var owner = Host.Client();
        var id = (await Body(await owner.PostAsync("v1/runs?wait=30", Json(Hello)))).GetProperty("id").GetString();
        var (_, otherKey) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var other = Host.Client(otherKey);

        await AssertProblem(await other.GetAsync($"v1/runs/{id}"), HttpStatusCode.NotFound, "not-found");
        await AssertProblem(await other.DeleteAsync($"v1/runs/{id}"), HttpStatusCode.NotFound, "not-found");
        await AssertProblem(await other.GetAsync($"v1/runs/{id}/provenance"), HttpStatusCode.NotFound, "not-found");
        Assert.Equal(HttpStatusCode.OK, (await owner.GetAsync($"v1/runs/{id}")).StatusCode);
    }

    [Fact]
    public async Task GetRun_UnknownId_Is404Problem()
    {
        using var http = Host.Client();
        await AssertProblem(await http.GetAsync("v1/runs/run_does_not_exist"), HttpStatusCode.NotFound, "not-found");
    }

    [Fact]
    public async Task SubmitRun_SameIdempotencyKey_ReturnsTheSameRun_ADifferentBodyConflicts()
    {
        var (tenant, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);
        var idempotencyKey = Guid.NewGuid().ToString();

        var first = await Send(http, Hello, idempotencyKey);
        var second = await Send(http, Hello, idempotencyKey);
        using var conflict = await http.SendAsync(Request(http, """{"code":"print(2)","language":"python","isolationLevel":"none"}""", idempotencyKey));

        Assert.Equal(first.GetProperty("id").GetString(), second.GetProperty("id").GetString());
        await AssertProblem(conflict, HttpStatusCode.Conflict, "conflict");
        Assert.Equal(1, await Tenants.CountAsync(fixture.Azurite.ConnectionString, "runs", tenant));
        Assert.Equal(1, await Tenants.CountAsync(fixture.Azurite.ConnectionString, "ledger", tenant));
    }

    [Fact]
    public async Task CancelRun_WhileRunning_CancelsIt_ThenConflicts()
    {
        using var http = Host.Client();
        using var submitted = await http.PostAsync("v1/runs", Json("""{"code":"import time\ntime.sleep(60)","language":"python","isolationLevel":"none","timeout":120000}"""));
        var id = (await Body(submitted)).GetProperty("id").GetString();
        await Poll.UntilAsync(async () => (await Body(await http.GetAsync($"v1/runs/{id}"))).GetProperty("status").GetString(), s => s == "running", TimeSpan.FromSeconds(60), "the run to start");

        using var cancel = await http.DeleteAsync($"v1/runs/{id}");
        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        var done = await Poll.UntilAsync(
            async () => await Body(await http.GetAsync($"v1/runs/{id}")),
            r => r.GetProperty("status").GetString() is not ("queued" or "running"),
            TimeSpan.FromSeconds(60),
            "the run to be cancelled");

        Assert.Equal("cancelled", done.GetProperty("status").GetString());
        await AssertProblem(await http.DeleteAsync($"v1/runs/{id}"), HttpStatusCode.Conflict, "conflict");
    }

    [Fact]
    public async Task SandboxesRun_V1Sdk_ReturnsSandboxResultSynchronously()
    {
        using var http = Host.Client();
        using var response = await http.PostAsync("v1/sandboxes/run", Json("""{"spec":{"code":"console.log(2+3)","language":"javascript","isolationLevel":"none"},"constraints":{"maxCost":0.01}}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var result = await Body(response);
        Assert.Equal("5\n", result.GetProperty("stdout").GetString());
        Assert.Equal(0, result.GetProperty("exitCode").GetInt32());
        Assert.True(result.GetProperty("cost").GetDecimal() > 0);
    }

    [Fact]
    public async Task SandboxesRun_WithoutSpec_Is400()
    {
        using var http = Host.Client();
        await AssertProblem(await http.PostAsync("v1/sandboxes/run", Json("""{"constraints":{}}""")), HttpStatusCode.BadRequest, "validation-failed");
    }

    [Fact]
    public async Task Usage_AfterARun_CountsItsCost()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);
        var run = await Body(await http.PostAsync("v1/runs?wait=30", Json(Hello)));

        var usage = await Body(await http.GetAsync("v1/usage"));

        Assert.Equal(1, usage.GetProperty("runs").GetInt32());
        Assert.Equal(run.GetProperty("cost").GetProperty("total").GetDecimal(), usage.GetProperty("total").GetDecimal());
    }

    private async Task<JsonElement> Send(HttpClient http, string body, string idempotencyKey)
    {
        using var response = await http.SendAsync(Request(http, body, idempotencyKey));
        if (!response.IsSuccessStatusCode)
        {
            await Task.Delay(1000); // the host logs an internal error as it answers
            Assert.Fail($"{(int)response.StatusCode} {response.StatusCode}: {await response.Content.ReadAsStringAsync()}\nhost log:\n{Host.Log}");
        }

        return await Body(response);
    }

    private static HttpRequestMessage Request(HttpClient http, string body, string idempotencyKey)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "v1/runs?wait=30") { Content = Json(body) };
        request.Headers.Add("Idempotency-Key", idempotencyKey);
        return request;
    }

    private static string RouteKey(JsonElement run)
    {
        var chosen = run.GetProperty("route").GetProperty("chosen");
        return $"{chosen.GetProperty("provider").GetString()}/{chosen.GetProperty("runtime").GetString()}/{chosen.GetProperty("region").GetString()}";
    }

    internal static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    internal static async Task<JsonElement> Body(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();

    /// <summary>A problem of <paramref name="type"/> whose field errors name <paramref name="field"/>.</summary>
    internal static async Task<JsonElement> AssertProblem(HttpResponseMessage response, HttpStatusCode status, string type, string field)
    {
        var problem = await AssertProblem(response, status, type);
        Assert.True(
            problem.TryGetProperty("errors", out var errors) && errors.EnumerateObject().Any(e => e.Name == field || e.Value.ToString().Contains(field, StringComparison.Ordinal)),
            $"the problem names no field '{field}': {problem}");
        return problem;
    }

    internal static async Task<JsonElement> AssertProblem(HttpResponseMessage response, HttpStatusCode status, string type)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {status}, got {response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal("https://sandstorm.dev/problems/" + type, problem.GetProperty("type").GetString());
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        return problem;
    }
}
