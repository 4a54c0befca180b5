using System.Net;
using System.Net.Http.Headers;
using Sandstorm.Core.Contracts;
using static Sandstorm.IntegrationTests.RunsApiTests;

namespace Sandstorm.IntegrationTests;

/// <summary>What one tenant can do to the control plane: idempotency races, nulls in bodies, rates and oversized batches.</summary>
[Collection(LocalHostCollection.Name)]
public sealed class AbuseLimitsTests(LocalHostFixture fixture)
{
    [Fact]
    public async Task SubmitRun_OneIdempotencyKeyTwoBodiesAtOnce_OneWinsAndTheOtherGets409()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = fixture.Host.Client(key);
        for (var round = 0; round < 4; round++)
        {
            var idempotencyKey = $"race-{round}-{Guid.NewGuid():N}";
            var bodies = new[] { "print('a')", "print('b')" };
            var responses = await Task.WhenAll(bodies.Select(code =>
            {
                var request = new HttpRequestMessage(HttpMethod.Post, "v1/runs?wait=30")
                {
                    Content = Json($$"""{"code":"{{code}}","language":"python","isolationLevel":"none"}"""),
                };
                request.Headers.Add("Idempotency-Key", idempotencyKey);
                return http.SendAsync(request);
            }));

            var statuses = responses.Select(r => r.StatusCode).ToList();
            Assert.Equal(1, statuses.Count(s => s == HttpStatusCode.Conflict));
            var winner = responses.Single(r => r.StatusCode != HttpStatusCode.Conflict);
            Assert.Equal(HttpStatusCode.OK, winner.StatusCode);
            await AssertProblem(responses.Single(r => r.StatusCode == HttpStatusCode.Conflict), HttpStatusCode.Conflict, "conflict");

            // The run executed the body of the submission that created it, not the other one's.
            var winnerBody = bodies[Array.IndexOf(responses, winner)];
            var run = await Body(winner);
            Assert.Equal(winnerBody[7..8] + "\n", run.GetProperty("stdout").GetString());
        }
    }

    [Fact]
    public async Task Bodies_NullInsideListsAndMaps_Are400ProblemsNamingTheField()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = fixture.Host.Client(key);

        await AssertProblem(
            await http.PostAsync("v1/runs", Json("""{"code":"print(1)","language":"python","files":{"a.txt":null}}""")),
            HttpStatusCode.BadRequest, "validation-failed", "files.a.txt");
        await AssertProblem(
            await http.PostAsync("v1/runs", Json("""{"code":"print(1)","language":"python","requirements":[null]}""")),
            HttpStatusCode.BadRequest, "validation-failed", "requirements[0]");

        var enrollment = await Body(await http.PostAsync("v1/edge/enrollment-tokens", null));
        using var enrol = new HttpClient { BaseAddress = new Uri(fixture.Host.Url) };
        enrol.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", enrollment.GetProperty("token").GetString());
        await AssertProblem(
            await enrol.PostAsync("v1/edge/agents", Json("""{"name":"nulls","labels":{"k":null}}""")),
            HttpStatusCode.BadRequest, "validation-failed", "labels.k");

        // A fresh enrollment token: an enrolment may use its token up.
        var second = await Body(await http.PostAsync("v1/edge/enrollment-tokens", null));
        enrol.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", second.GetProperty("token").GetString());
        var agent = await Body(await enrol.PostAsync("v1/edge/agents", Json("""{"name":"nulls"}""")));
        using var agentHttp = fixture.Host.Client(agent.GetProperty("agentToken").GetString());
        await AssertProblem(
            await agentHttp.PostAsync($"v1/edge/agents/{agent.GetProperty("agentId").GetString()}/heartbeat", Json("""{"runtimes":[null]}""")),
            HttpStatusCode.BadRequest, "validation-failed", "runtimes[0]");
    }

    [Fact]
    public async Task SubmitRun_BeyondTheTenantsRate_Is429WithRetryAfterAndOtherTenantsAreNotLimited()
    {
        var (limited, limitedKey) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        await Tenants.SetAsync(fixture.Azurite.ConnectionString, limited, new TenantSettings { AllowUnisolated = true, RunsPerMinute = 1, RunBurst = 2 });
        var (_, otherKey) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = fixture.Host.Client(limitedKey);
        using var other = fixture.Host.Client(otherKey);
        const string Run = """{"code":"print(1)","language":"python","isolationLevel":"none"}""";

        var accepted = new[] { await http.PostAsync("v1/runs", Json(Run)), await http.PostAsync("v1/runs", Json(Run)) };
        var refused = await http.PostAsync("v1/runs", Json(Run));
        var others = new[] { await other.PostAsync("v1/runs", Json(Run)), await other.PostAsync("v1/runs", Json(Run)), await other.PostAsync("v1/runs", Json(Run)) };

        Assert.All(accepted, r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        await AssertProblem(refused, HttpStatusCode.TooManyRequests, "quota-exceeded");
        Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), $"Retry-After: {refused.Headers.RetryAfter}");
        Assert.All(others, r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
    }

    [Fact]
    public async Task SubmitBatch_BeyondTheTenantsRate_Is429AndOtherTenantsAreNotLimited()
    {
        var (limited, limitedKey) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        await Tenants.SetAsync(fixture.Azurite.ConnectionString, limited, new TenantSettings { AllowUnisolated = true, BatchesPerMinute = 1, BatchBurst = 1 });
        var (_, otherKey) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = fixture.Host.Client(limitedKey);
        using var other = fixture.Host.Client(otherKey);
        const string Batch = """[{"code":"print(1)","language":"python","isolationLevel":"none"}]""";

        var first = await http.PostAsync("v1/batches", Json(Batch));
        var second = await http.PostAsync("v1/batches", Json(Batch));
        var others = new[] { await other.PostAsync("v1/batches", Json(Batch)), await other.PostAsync("v1/batches", Json(Batch)) };

        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        await AssertProblem(second, HttpStatusCode.TooManyRequests, "quota-exceeded");
        Assert.NotNull(second.Headers.RetryAfter);
        Assert.All(others, r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
    }

    [Fact]
    public async Task SubmitBatch_ChunkedBodyOverTheCap_Is413WithoutBeingBufferedWhole()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        using var http = fixture.Host.Client(key);
        using var content = new OversizedArray(Sandstorm.Api.Batches.BatchEndpoints.MaxBytes + (1024 * 1024));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        using var response = await http.PostAsync("v1/batches", content);

        await AssertProblem(response, HttpStatusCode.RequestEntityTooLarge, "payload-too-large");
    }

    // "[" and then whitespace, sent chunked (no Content-Length), so only counting while reading can catch it.
    private sealed class OversizedArray(long bytes) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var chunk = new byte[64 * 1024];
            Array.Fill(chunk, (byte)' ');
            chunk[0] = (byte)'[';
            try
            {
                for (long sent = 0; sent < bytes; sent += chunk.Length)
                {
                    await stream.WriteAsync(chunk);
                    chunk[0] = (byte)' ';
                }
            }
            catch (IOException)
            {
                // The server answered and stopped reading: the answer is what the test reads.
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
