using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using static Sandstorm.IntegrationTests.RunsApiTests;

namespace Sandstorm.IntegrationTests;

/// <summary>
/// Edge credentials over HTTP against the real local host: enrollment tokens (single-use by default, listed, revoked) and
/// agent tokens (listed, rotated, revoked), each refused at once when it no longer holds.
/// </summary>
[Collection(LocalHostCollection.Name)]
public sealed class EdgeCredentialsApiTests(LocalHostFixture fixture)
{
    private const string Heartbeat = """{"runtimes":[{"name":"bwrap","isolation":"standard","works":true}]}""";

    private LocalHostProcess Host => fixture.Host;

    [Fact]
    public async Task EnrollmentToken_ByDefault_EnrolsOneAgentThenIsRefusedAsUsed()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);
        var token = await Body(await http.PostAsync("v1/edge/enrollment-tokens", Json("{}")));
        Assert.False(token.GetProperty("multiUse").GetBoolean());
        Assert.Equal(1, token.GetProperty("maxUses").GetInt32());
        Assert.True(token.GetProperty("expiresAt").GetDateTimeOffset() <= DateTimeOffset.UtcNow.AddMinutes(16), "the default lifetime is short");

        using (var first = await EnrollAsync(token.GetProperty("token").GetString()!, "one"))
        {
            Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        }

        using var second = await EnrollAsync(token.GetProperty("token").GetString()!, "two");
        await AssertProblem(second, HttpStatusCode.Unauthorized, "token-used");
        var agents = await Body(await http.GetAsync("v1/edge/agents"));
        Assert.Equal(["one"], agents.GetProperty("agents").EnumerateArray().Select(a => a.GetProperty("name").GetString()));

        var listed = await Body(await http.GetAsync("v1/edge/enrollment-tokens"));
        var row = listed.GetProperty("tokens").EnumerateArray().Single();
        Assert.Equal(token.GetProperty("id").GetString(), row.GetProperty("id").GetString());
        Assert.Equal(("used", 1, 1), (row.GetProperty("state").GetString(), row.GetProperty("uses").GetInt32(), row.GetProperty("maxUses").GetInt32()));
        Assert.DoesNotContain(token.GetProperty("token").GetString()!, listed.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task EnrollmentToken_MultiUse_EnrolsUpToMaxUses()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);
        var token = (await Body(await http.PostAsync("v1/edge/enrollment-tokens", Json("""{"maxUses":2}""")))).GetProperty("token").GetString()!;

        var statuses = new List<HttpStatusCode>();
        foreach (var name in new[] { "a", "b", "c" })
        {
            using var response = await EnrollAsync(token, name);
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.Created, HttpStatusCode.Created, HttpStatusCode.Unauthorized], statuses);
    }

    [Fact]
    public async Task RevokeEnrollmentToken_ThenEnrol_Is401RevokedAndEnrolsNothing()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);
        var token = await Body(await http.PostAsync("v1/edge/enrollment-tokens", Json("""{"maxUses":5}""")));
        var id = token.GetProperty("id").GetString()!;

        using (var revoke = await http.DeleteAsync($"v1/edge/enrollment-tokens/{id}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        using (var again = await http.DeleteAsync($"v1/edge/enrollment-tokens/{id}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, again.StatusCode);
        }

        using var enrol = await EnrollAsync(token.GetProperty("token").GetString()!, "late");
        await AssertProblem(enrol, HttpStatusCode.Unauthorized, "token-revoked");
        Assert.Equal(0, (await Body(await http.GetAsync("v1/edge/agents"))).GetProperty("agents").GetArrayLength());
        var row = (await Body(await http.GetAsync("v1/edge/enrollment-tokens"))).GetProperty("tokens").EnumerateArray().Single();
        Assert.Equal("revoked", row.GetProperty("state").GetString());
    }

    [Theory]
    [InlineData("""{"maxUses":0}""", "maxUses")]
    [InlineData("""{"maxUses":101}""", "maxUses")]
    [InlineData("""{"ttlMinutes":1441}""", "ttlMinutes")]
    [InlineData("""{"ttlMinutes":0}""", "ttlMinutes")]
    public async Task CreateEnrollmentToken_BadInput_Is400AndCreatesNothing(string body, string field)
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);

        using var response = await http.PostAsync("v1/edge/enrollment-tokens", Json(body));

        await AssertProblem(response, HttpStatusCode.BadRequest, "validation-failed", field);
        Assert.Equal(0, (await Body(await http.GetAsync("v1/edge/enrollment-tokens"))).GetProperty("tokens").GetArrayLength());
    }

    [Fact]
    public async Task RevokeEnrollmentToken_MalformedId_Is400()
    {
        using var http = Host.Client((await Tenants.CreateAsync(fixture.Azurite.ConnectionString)).Key);

        using var response = await http.DeleteAsync("v1/edge/enrollment-tokens/set_not-an-id");

        await AssertProblem(response, HttpStatusCode.BadRequest, "validation-failed", "tokenId");
    }

    [Fact]
    public async Task EnrollmentTokens_OfAnotherTenant_AreNeitherListedNorRevocable()
    {
        var (_, keyA) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var (_, keyB) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var a = Host.Client(keyA);
        using var b = Host.Client(keyB);
        var token = await Body(await a.PostAsync("v1/edge/enrollment-tokens", Json("{}")));

        Assert.Equal(0, (await Body(await b.GetAsync("v1/edge/enrollment-tokens"))).GetProperty("tokens").GetArrayLength());
        using var revoke = await b.DeleteAsync($"v1/edge/enrollment-tokens/{token.GetProperty("id").GetString()}");

        await AssertProblem(revoke, HttpStatusCode.NotFound, "not-found");
        using var enrol = await EnrollAsync(token.GetProperty("token").GetString()!, "still-works");
        Assert.Equal(HttpStatusCode.Created, enrol.StatusCode);
    }

    [Fact]
    public async Task CreateEnrollmentToken_BeyondTheActiveLimit_Is409UntilOneIsRevoked()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);
        var ids = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            ids.Add((await Body(await http.PostAsync("v1/edge/enrollment-tokens", Json("{}")))).GetProperty("id").GetString()!);
        }

        using (var over = await http.PostAsync("v1/edge/enrollment-tokens", Json("{}")))
        {
            await AssertProblem(over, HttpStatusCode.Conflict, "conflict");
        }

        (await http.DeleteAsync($"v1/edge/enrollment-tokens/{ids[0]}")).Dispose();
        using var after = await http.PostAsync("v1/edge/enrollment-tokens", Json("{}"));
        Assert.Equal(HttpStatusCode.Created, after.StatusCode);
        Assert.Equal(21, (await Body(await http.GetAsync("v1/edge/enrollment-tokens"))).GetProperty("tokens").GetArrayLength());
    }

    [Fact]
    public async Task RotateAgentToken_OldTokenRefusedAtOnce_NewTokenWorks_ListingShowsTheNewTokenId()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = Host.Client(key);
        var (agentId, oldToken) = await EnrolledAgentAsync(http, "rotating");
        var before = Agent(await Body(await http.GetAsync("v1/edge/agents")), agentId).GetProperty("token");

        var rotated = await Body(await http.PostAsync($"v1/edge/agents/{agentId}/rotate", null));
        var newToken = rotated.GetProperty("agentToken").GetString()!;

        Assert.NotEqual(oldToken, newToken);
        using (var refused = await HeartbeatAsync(agentId, oldToken))
        {
            await AssertProblem(refused, HttpStatusCode.Unauthorized, "unauthorized");
        }

        using (var accepted = await HeartbeatAsync(agentId, newToken))
        {
            Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
        }

        var after = Agent(await Body(await http.GetAsync("v1/edge/agents")), agentId).GetProperty("token");
        Assert.Equal(rotated.GetProperty("tokenId").GetString(), after.GetProperty("id").GetString());
        Assert.NotEqual(before.GetProperty("id").GetString(), after.GetProperty("id").GetString());
        Assert.Equal((0, 1), (before.GetProperty("rotations").GetInt32(), after.GetProperty("rotations").GetInt32()));
    }

    [Fact]
    public async Task RotateAgentToken_OtherTenantsAgent_Is404AndItsTokenKeepsWorking()
    {
        var (_, keyA) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var (_, keyB) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var a = Host.Client(keyA);
        using var b = Host.Client(keyB);
        var (agentId, token) = await EnrolledAgentAsync(a, "a-agent");

        using var rotate = await b.PostAsync($"v1/edge/agents/{agentId}/rotate", null);
        using var revoke = await b.DeleteAsync($"v1/edge/agents/{agentId}");

        await AssertProblem(rotate, HttpStatusCode.NotFound, "not-found");
        await AssertProblem(revoke, HttpStatusCode.NotFound, "not-found");
        using var beat = await HeartbeatAsync(agentId, token);
        Assert.Equal(HttpStatusCode.OK, beat.StatusCode);
    }

    [Theory]
    [InlineData("not-an-agent", HttpStatusCode.BadRequest)]
    [InlineData("agt_0000000000000000", HttpStatusCode.NotFound)]
    public async Task RotateAgentToken_BadOrUnknownId_IsRefused(string agentId, HttpStatusCode status)
    {
        using var http = Host.Client((await Tenants.CreateAsync(fixture.Azurite.ConnectionString)).Key);

        using var response = await http.PostAsync($"v1/edge/agents/{agentId}/rotate", null);

        await AssertProblem(response, status, status == HttpStatusCode.BadRequest ? "validation-failed" : "not-found");
    }

    [Fact]
    public async Task RotateAgentToken_WithAnAgentToken_Is401()
    {
        using var http = Host.Client((await Tenants.CreateAsync(fixture.Azurite.ConnectionString)).Key);
        var (agentId, token) = await EnrolledAgentAsync(http, "self");
        using var asAgent = Host.Client(token);

        using var response = await asAgent.PostAsync($"v1/edge/agents/{agentId}/rotate", null);

        await AssertProblem(response, HttpStatusCode.Unauthorized, "unauthorized");
        using var beat = await HeartbeatAsync(agentId, token);
        Assert.Equal(HttpStatusCode.OK, beat.StatusCode);
    }

    [Fact]
    public async Task RevokeAgent_RotatedToken_BothTokensRefused()
    {
        using var http = Host.Client((await Tenants.CreateAsync(fixture.Azurite.ConnectionString)).Key);
        var (agentId, oldToken) = await EnrolledAgentAsync(http, "gone");
        var newToken = (await Body(await http.PostAsync($"v1/edge/agents/{agentId}/rotate", null))).GetProperty("agentToken").GetString()!;

        using (var revoke = await http.DeleteAsync($"v1/edge/agents/{agentId}"))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        foreach (var token in new[] { oldToken, newToken })
        {
            using var beat = await HeartbeatAsync(agentId, token);
            await AssertProblem(beat, HttpStatusCode.Unauthorized, "unauthorized");
        }

        using var rotate = await http.PostAsync($"v1/edge/agents/{agentId}/rotate", null);
        await AssertProblem(rotate, HttpStatusCode.NotFound, "not-found");
    }

    private static JsonElement Agent(JsonElement list, string agentId) =>
        list.GetProperty("agents").EnumerateArray().Single(a => a.GetProperty("agentId").GetString() == agentId);

    private async Task<(string AgentId, string Token)> EnrolledAgentAsync(HttpClient tenant, string name)
    {
        var token = (await Body(await tenant.PostAsync("v1/edge/enrollment-tokens", Json("{}")))).GetProperty("token").GetString()!;
        using var enrolled = await EnrollAsync(token, name);
        Assert.Equal(HttpStatusCode.Created, enrolled.StatusCode);
        var agent = await Body(enrolled);
        return (agent.GetProperty("agentId").GetString()!, agent.GetProperty("agentToken").GetString()!);
    }

    private async Task<HttpResponseMessage> EnrollAsync(string enrollmentToken, string name)
    {
        using var anonymous = new HttpClient { BaseAddress = new Uri(Host.Url) };
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/edge/agents") { Content = Json($$"""{"name":"{{name}}"}""") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", enrollmentToken);
        return await anonymous.SendAsync(request);
    }

    private async Task<HttpResponseMessage> HeartbeatAsync(string agentId, string agentToken)
    {
        using var anonymous = new HttpClient { BaseAddress = new Uri(Host.Url) };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"v1/edge/agents/{agentId}/heartbeat") { Content = Json(Heartbeat) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", agentToken);
        return await anonymous.SendAsync(request);
    }
}
