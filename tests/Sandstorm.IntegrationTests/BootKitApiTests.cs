using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Testing;
using static Sandstorm.IntegrationTests.RunsApiTests;

namespace Sandstorm.IntegrationTests;

/// <summary>
/// Bare-metal runs (<c>deployment: "bare-metal"</c> + <c>bootcImage</c>) and <c>GET /v1/bootkit/images</c> against the
/// real local host: agents speak the edge protocol over HTTP and report the image they booted from in their heartbeat.
/// </summary>
[Collection(LocalHostCollection.Name)]
public sealed class BootKitApiTests(LocalHostFixture fixture)
{
    private LocalHostProcess Host => fixture.Host;

    private static string NewImageName() => $"registry.example/bootkit-{Guid.NewGuid():N}:v1.0";

    private static string Digest(char c) => "sha256:" + new string(c, 64);

    [Theory]
    [InlineData("""{"code":"print(1)","language":"python","deployment":"cloud"}""", "deployment")]
    [InlineData("""{"code":"print(1)","language":"python","deployment":"bare-metal"}""", "bootcImage")]
    [InlineData("""{"code":"print(1)","language":"python","bootcImage":"registry.example/os:v1"}""", "bootcImage")]
    [InlineData("""{"code":"print(1)","language":"python","deployment":"bare-metal","bootcImage":"registry.example/os:v1@sha256:xyz"}""", "bootcImage")]
    [InlineData("""{"code":"print(1)","language":"python","deployment":"bare-metal","bootcImage":"has space:v1"}""", "bootcImage")]
    public async Task SubmitRun_BadBareMetalInput_Is400NamingTheFieldAndPersistsNothing(string body, string field)
    {
        var (tenant, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);

        using var response = await http.PostAsync("v1/runs", Json(body));

        await AssertProblem(response, HttpStatusCode.BadRequest, "validation-failed", field);
        Assert.Equal(0, await Tenants.CountAsync(fixture.Azurite.ConnectionString, "runs", tenant));
    }

    [Fact]
    public async Task SubmitRun_UnknownBareMetalField_Is400NamingIt()
    {
        var (tenant, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);

        using var response = await http.PostAsync("v1/runs", Json("""{"code":"print(1)","language":"python","deployment":"bare-metal","bootcImag":"x:v1"}"""));

        var problem = await AssertProblem(response, HttpStatusCode.BadRequest, "malformed-json");
        Assert.True(problem.GetProperty("errors").TryGetProperty("bootcImag", out _), problem.ToString());
        Assert.Equal(0, await Tenants.CountAsync(fixture.Azurite.ConnectionString, "runs", tenant));
    }

    [Fact]
    public async Task SubmitRun_BareMetalWithNoAgentBootedFromTheImage_IsNoCandidateNamingIt()
    {
        var (tenant, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var other = NewImageName();
        await AgentAsync(key, "plain", image: new EdgeBootImage(other, Digest('a')));
        var wanted = NewImageName();
        using var http = Host.Client(key);

        using var response = await http.PostAsync("v1/runs", Json($$"""{"code":"print(1)","language":"python","deployment":"bare-metal","bootcImage":"{{wanted}}"}"""));

        var problem = await AssertProblem(response, HttpStatusCode.UnprocessableEntity, "no-candidate", "bootcImage");
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains(wanted, detail, StringComparison.Ordinal);
        Assert.Contains(other, detail, StringComparison.Ordinal);
        Assert.Equal(0, await Tenants.CountAsync(fixture.Azurite.ConnectionString, "runs", tenant));
    }

    [Fact]
    public async Task SubmitRun_BareMetalPinnedToAnotherDigest_IsNoCandidate()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var image = NewImageName();
        await AgentAsync(key, "booted", image: new EdgeBootImage(image, Digest('a')));
        using var http = Host.Client(key);

        using var response = await http.PostAsync("v1/runs", Json($$"""{"code":"print(1)","language":"python","deployment":"bare-metal","bootcImage":"{{image}}@{{Digest('b')}}"}"""));

        var problem = await AssertProblem(response, HttpStatusCode.UnprocessableEntity, "no-candidate");
        Assert.Contains(Digest('b'), problem.GetProperty("detail").GetString()!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SubmitRun_BareMetalImageOnlyAnotherTenantRuns_IsNoCandidate()
    {
        var (_, keyA) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var (tenantB, keyB) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var image = NewImageName();
        await AgentAsync(keyA, "a-booted", image: new EdgeBootImage(image, Digest('c')));
        using var asB = Host.Client(keyB);

        using var response = await asB.PostAsync("v1/runs", Json($$"""{"code":"print(1)","language":"python","deployment":"bare-metal","bootcImage":"{{image}}"}"""));

        var problem = await AssertProblem(response, HttpStatusCode.UnprocessableEntity, "no-candidate");
        Assert.DoesNotContain(Digest('c'), problem.GetProperty("detail").GetString()!, StringComparison.Ordinal);
        Assert.Equal(0, await Tenants.CountAsync(fixture.Azurite.ConnectionString, "runs", tenantB));
        using var images = await asB.GetAsync("v1/bootkit/images");
        Assert.Equal(0, (await Body(images)).GetProperty("images").GetArrayLength());
    }

    [Fact]
    public async Task SubmitRun_BareMetal_IsPlacedOnlyOnTheAgentBootedFromTheImage()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var image = NewImageName();
        var plain = await AgentAsync(key, "plain", image: null);
        var other = await AgentAsync(key, "other-image", image: new EdgeBootImage(NewImageName(), Digest('d')));
        var booted = await AgentAsync(key, "booted", image: new EdgeBootImage(image, Digest('e')));
        using var http = Host.Client(key);
        // Under load enrolling three agents can outlast the agent timeout: the booted one heartbeats again right before the run.
        await BeatAsync(booted, new EdgeBootImage(image, Digest('e')));

        using var submitted = await http.PostAsync("v1/runs", Json($$"""{"code":"print(6*7)","language":"python","deployment":"bare-metal","bootcImage":"{{image}}@{{Digest('e')}}"}"""));
        Assert.Equal(HttpStatusCode.Accepted, submitted.StatusCode);
        var runId = (await Body(submitted)).GetProperty("id").GetString()!;

        var job = await Poll.UntilAsync(
            async () => (await PollAsync(booted, wait: 5)).Jobs.FirstOrDefault(),
            j => j is not null,
            TimeSpan.FromSeconds(60),
            "the job on the agent booted from the image");
        Assert.Equal(runId, job!.RunId);
        Assert.Empty((await PollAsync(plain, wait: 0)).Jobs);
        Assert.Empty((await PollAsync(other, wait: 0)).Jobs);

        var result = new EdgeJobResult { JobId = job.JobId, Result = new ExecutionResult { Runtime = "bwrap", Stdout = "42\n", ExitCode = 0, WallTimeMs = 5 } };
        using (var post = await booted.Http.PostAsJsonAsync($"v1/edge/agents/{booted.AgentId}/jobs/{job.JobId}/result", result, SandstormJson.Options))
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
        }

        var run = await Poll.UntilAsync(
            async () => await Body(await http.GetAsync($"v1/runs/{runId}")),
            r => r.GetProperty("status").GetString() is not ("queued" or "running"),
            TimeSpan.FromSeconds(60),
            "the run to finish");
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal("edge", run.GetProperty("provider").GetString());
        Assert.Equal("42\n", run.GetProperty("stdout").GetString());
    }

    [Fact]
    public async Task ListImages_GroupsTheTenantsAgentsByImage()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var image = NewImageName();
        var first = await AgentAsync(key, "rack-1", image: new EdgeBootImage(image, Digest('1')));
        var second = await AgentAsync(key, "rack-2", image: new EdgeBootImage(image, Digest('1')));
        var updated = await AgentAsync(key, "rack-3", image: new EdgeBootImage(image, Digest('2')));
        await AgentAsync(key, "plain", image: null);
        using var http = Host.Client(key);

        using var response = await http.GetAsync("v1/bootkit/images");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var list = (await response.Content.ReadFromJsonAsync<BootKitImageList>(SandstormJson.Options))!;
        Assert.Equal([Digest('1'), Digest('2')], list.Images.Select(i => i.Digest));
        Assert.All(list.Images, i => Assert.Equal(image, i.Name));
        Assert.Equal($"{image}@{Digest('1')}", list.Images[0].Reference);
        Assert.Equal(new[] { first.AgentId, second.AgentId }.Order(StringComparer.Ordinal), list.Images[0].Agents.Select(a => a.AgentId));
        Assert.Equal([updated.AgentId], list.Images[1].Agents.Select(a => a.AgentId));
        Assert.All(list.Images.SelectMany(i => i.Agents), a => Assert.True(a.Live));
    }

    [Fact]
    public async Task ListImages_WithoutApiKey_Is401()
    {
        using var anonymous = new HttpClient { BaseAddress = new Uri(Host.Url) };

        using var response = await anonymous.GetAsync("v1/bootkit/images");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Theory]
    [InlineData("""{"name":"","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}""")]
    [InlineData("""{"name":"registry.example/os:v1","digest":"md5:abc"}""")]
    [InlineData("""{"name":"registry.example/os:v1@sha256:00","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}""")]
    public async Task Heartbeat_MalformedBootcImage_Is400(string image)
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var agent = await AgentAsync(key, "bad", image: null);

        using var response = await agent.Http.PostAsync(
            $"v1/edge/agents/{agent.AgentId}/heartbeat",
            Json($$"""{"runtimes":[{"name":"bwrap","isolation":"standard","works":true}],"cpu":2,"memoryMiB":1024,"bootcImage":{{image}}}"""));

        await AssertProblem(response, HttpStatusCode.BadRequest, "validation-failed", "bootcImage");
    }

    private sealed record Agent(string AgentId, HttpClient Http);

    /// <summary>Enrols an agent of the tenant and sends one heartbeat (bwrap, python) reporting <paramref name="image"/>.</summary>
    private async Task<Agent> AgentAsync(string apiKey, string name, EdgeBootImage? image)
    {
        using var tenant = Host.Client(apiKey);
        using var tokenResponse = await tenant.PostAsJsonAsync("v1/edge/enrollment-tokens", new EdgeEnrollmentTokenRequest { TtlMinutes = 10 }, SandstormJson.Options);
        Assert.Equal(HttpStatusCode.Created, tokenResponse.StatusCode);
        var token = (await tokenResponse.Content.ReadFromJsonAsync<EdgeEnrollmentTokenResponse>(SandstormJson.Options))!.Token;

        var http = new HttpClient { BaseAddress = new Uri(Host.Url) };
        using var enrol = new HttpRequestMessage(HttpMethod.Post, "v1/edge/agents") { Content = JsonContent.Create(new EdgeEnrollRequest { Name = name }, options: SandstormJson.Options) };
        enrol.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var enrolled = await http.SendAsync(enrol);
        Assert.Equal(HttpStatusCode.Created, enrolled.StatusCode);
        var agent = (await enrolled.Content.ReadFromJsonAsync<EdgeEnrollResponse>(SandstormJson.Options))!;
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", agent.AgentToken);

        var enrolledAgent = new Agent(agent.AgentId, http);
        await BeatAsync(enrolledAgent, image);
        return enrolledAgent;
    }

    private static async Task BeatAsync(Agent agent, EdgeBootImage? image)
    {
        var heartbeat = new EdgeHeartbeat
        {
            Runtimes = [new EdgeRuntimeStatus("bwrap", IsolationLevel.Standard, Works: true)],
            Cpu = 2,
            MemoryMiB = 2048,
            Languages = [Languages.Python],
            Jobs = [],
            BootcImage = image,
        };
        using var beat = await agent.Http.PostAsJsonAsync($"v1/edge/agents/{agent.AgentId}/heartbeat", heartbeat, SandstormJson.Options);
        Assert.Equal(HttpStatusCode.OK, beat.StatusCode);
    }

    private static async Task<EdgeJobBatch> PollAsync(Agent agent, int wait)
    {
        using var response = await agent.Http.GetAsync($"v1/edge/agents/{agent.AgentId}/jobs?wait={wait}");
        if (response.StatusCode == HttpStatusCode.NoContent)
        {
            return new EdgeJobBatch([]);
        }

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<EdgeJobBatch>(SandstormJson.Options))!;
    }
}
