using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sandstorm.Testing;
using static Sandstorm.IntegrationTests.RunsApiTests;

namespace Sandstorm.IntegrationTests;

/// <summary>
/// <c>/v1/sandboxes</c> against the real local host: kept sandboxes in real runtimes, commands streamed as Server-Sent
/// Events, files, lifetimes, and what a tenant must never get: bad input half-applied, another tenant's sandbox, more
/// than its quota, the host's files.
/// </summary>
[Collection(LocalHostCollection.Name)]
public sealed class SandboxesApiTests(LocalHostFixture fixture)
{
    private string Storage => fixture.Azurite.ConnectionString;

    private async Task<HttpClient> TenantClientAsync()
    {
        var (_, key) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        return fixture.Host.Client(key);
    }

    private static async Task<JsonElement> CreateAsync(HttpClient http, string body = "{}")
    {
        using var response = await http.PostAsync("v1/sandboxes", Json(body));
        var sandbox = await Body(response);
        Assert.True(response.StatusCode == HttpStatusCode.Created, sandbox.ToString());
        return sandbox;
    }

    /// <summary>
    /// Reads a command's SSE stream to its end: (id, event, data) in order. A stream that stalls fails the test after two
    /// minutes with what it had sent (the client's timeout covers only the headers of a streamed response).
    /// </summary>
    internal static async Task<List<(long Id, string Event, JsonElement Data)>> ReadEventsAsync(HttpResponseMessage response)
    {
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = new List<(long, string, JsonElement)>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        long id = 0;
        string? name = null;
        while (await ReadLineAsync(reader, events, deadline.Token) is { } line)
        {
            if (line.StartsWith("id: ", StringComparison.Ordinal))
            {
                id = long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && name is not null)
            {
                events.Add((id, name, JsonDocument.Parse(line[6..]).RootElement.Clone()));
                if (name is "end" or "result")
                {
                    break;
                }

                name = null;
            }
        }

        return events;
    }

    private static async Task<string?> ReadLineAsync(StreamReader reader, List<(long Id, string Event, JsonElement Data)> events, CancellationToken deadline)
    {
        try
        {
            return await reader.ReadLineAsync(deadline);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"the event stream stalled after {events.Count} events: {string.Join(", ", events.Select(e => $"{e.Id} {e.Event}"))}");
        }
    }

    private static async Task<List<(long Id, string Event, JsonElement Data)>> RunAsync(HttpClient http, string id, object command)
    {
        using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"v1/sandboxes/{id}/commands") { Content = Json(JsonSerializer.Serialize(command)) }, HttpCompletionOption.ResponseHeadersRead);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        return await ReadEventsAsync(response);
    }

    private static string Output(IEnumerable<(long Id, string Event, JsonElement Data)> events, string stream = "stdout") =>
        string.Concat(events.Where(e => e.Event == stream).Select(e => e.Data.GetProperty("data").GetString()));

    [Fact]
    public async Task Sandbox_CommandsShareFilesAndState_StreamedWithIdsAndAnExitCode_ThenEndsBilledAndSigned()
    {
        using var http = await TenantClientAsync();
        var sandbox = await CreateAsync(http, """{"metadata":{"suite":"sandboxes"},"envVars":{"GREETING":"hi"},"timeout":120}""");
        var id = sandbox.GetProperty("id").GetString()!;
        Assert.Equal("running", sandbox.GetProperty("status").GetString());
        Assert.Equal("local", sandbox.GetProperty("provider").GetString());
        Assert.True(sandbox.GetProperty("expiresAt").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddSeconds(60));

        var first = await RunAsync(http, id, new { cmd = "echo \"$GREETING\" > state.txt; echo written; echo warn >&2; exit 4" });
        Assert.Equal("start", first[0].Event);
        Assert.Equal("end", first[^1].Event);
        Assert.Equal(4, first[^1].Data.GetProperty("exitCode").GetInt32());
        Assert.Equal("written\n", Output(first));
        Assert.Equal("warn\n", Output(first, "stderr"));
        Assert.Equal([.. first.Select(e => e.Id).Order()], first.Select(e => e.Id).ToList());
        Assert.Equal(first.Count, first.Select(e => e.Id).Distinct().Count());

        var second = await RunAsync(http, id, new { cmd = "cat state.txt; pwd" });
        Assert.Equal("hi\n/home/user\n", Output(second));

        // Files through the API are the commands' files.
        using (var read = await http.GetAsync($"v1/sandboxes/{id}/files/content?path=state.txt"))
        {
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            Assert.Equal("hi\n", await read.Content.ReadAsStringAsync());
        }

        using (var write = await http.PutAsync($"v1/sandboxes/{id}/files/content?path=dir/from-api.txt", new StringContent("from the API")))
        {
            Assert.True(write.IsSuccessStatusCode, await write.Content.ReadAsStringAsync());
        }

        Assert.Equal("from the API", Output(await RunAsync(http, id, new { cmd = "cat dir/from-api.txt" })));
        var listing = await Body(await http.GetAsync($"v1/sandboxes/{id}/files?path=dir"));
        Assert.Contains("from-api.txt", listing.ToString());

        using (var delete = await http.DeleteAsync($"v1/sandboxes/{id}"))
        {
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        }

        var ended = await Poll.UntilAsync(
            async () => await Body(await http.GetAsync($"v1/sandboxes/{id}")),
            s => s.TryGetProperty("provenance", out var p) && p.ValueKind == JsonValueKind.Object && s.TryGetProperty("cost", out var c) && c.ValueKind == JsonValueKind.Object,
            TimeSpan.FromSeconds(60),
            "the sandbox to end, billed and signed");
        Assert.Equal("stopped", ended.GetProperty("status").GetString());
        Assert.True(ended.GetProperty("cost").GetProperty("total").GetDecimal() > 0);
        // Its signed record attests every command, in order.
        var record = await Body(await http.GetAsync($"v1/sandboxes/{id}/provenance"));
        var statement = JsonDocument.Parse(Convert.FromBase64String(record.GetProperty("envelope").GetProperty("payload").GetString()!)).RootElement;
        Assert.Equal(3, statement.GetProperty("predicate").GetProperty("commands").GetArrayLength());

        // Ended is ended: commands and files are refused with the reason.
        using var late = await http.PostAsync($"v1/sandboxes/{id}/commands", Json("""{"cmd":"true"}"""));
        Assert.Equal(HttpStatusCode.Gone, late.StatusCode);
        await AssertProblem(late, HttpStatusCode.Gone, "sandbox-ended");
    }

    [Fact]
    public async Task CommandStream_ResumedWithLastEventId_GetsTheRestOnceAndNothingTwice()
    {
        using var http = await TenantClientAsync();
        var id = (await CreateAsync(http)).GetProperty("id").GetString()!;
        using var started = await http.PostAsync($"v1/sandboxes/{id}/commands", Json("""{"cmd":"for i in 1 2 3 4 5; do echo line$i; done","background":true}"""));
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var commandId = (await Body(started)).GetProperty("id").GetString()!;

        using var whole = await http.GetAsync($"v1/sandboxes/{id}/commands/{commandId}/events", HttpCompletionOption.ResponseHeadersRead);
        var all = await ReadEventsAsync(whole);
        Assert.Equal("line1\nline2\nline3\nline4\nline5\n", Output(all));

        // Reconnect after the second event: exactly the events after it.
        var cut = all[1].Id;
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v1/sandboxes/{id}/commands/{commandId}/events");
        request.Headers.Add("Last-Event-ID", cut.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var resumed = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var rest = await ReadEventsAsync(resumed);
        Assert.Equal(all.Where(e => e.Id > cut).Select(e => (e.Id, e.Event)), rest.Select(e => (e.Id, e.Event)));
    }

    [Fact]
    public async Task CommandTimeout_AndSandboxLifetime_AreSeparate_AndEachErrorSaysWhichEnded()
    {
        using var http = await TenantClientAsync();
        var id = (await CreateAsync(http, """{"timeout":120}""")).GetProperty("id").GetString()!;

        var timedOut = await RunAsync(http, id, new { cmd = "sleep 30", timeout = 1000 });
        var end = timedOut[^1].Data;
        Assert.Equal("timed_out", end.GetProperty("status").GetString());
        Assert.Contains("command timed out after 1 s", end.GetProperty("error").GetString());

        // The sandbox lives on after its command's timeout.
        Assert.Equal("alive\n", Output(await RunAsync(http, id, new { cmd = "echo alive" })));

        // A sandbox past its own lifetime: expired, and the error says when.
        var shortLived = (await CreateAsync(http, """{"timeout":2}""")).GetProperty("id").GetString()!;
        var expired = await Poll.UntilAsync(
            async () => await Body(await http.GetAsync($"v1/sandboxes/{shortLived}")),
            s => s.GetProperty("status").GetString() == "expired",
            TimeSpan.FromSeconds(60),
            "the short-lived sandbox to expire");
        Assert.Equal("expired", expired.GetProperty("status").GetString());
        using var late = await http.PostAsync($"v1/sandboxes/{shortLived}/commands", Json("""{"cmd":"true"}"""));
        var problem = await Body(late);
        Assert.Contains("expired at", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task BadInput_IsRefusedNamingTheField_AndNothingIsCreated()
    {
        using var http = await TenantClientAsync();
        await AssertProblem(await http.PostAsync("v1/sandboxes", Json("""{"isolationLevl":"strong"}""")), HttpStatusCode.BadRequest, "malformed-json", "isolationLevl");
        await AssertProblem(await http.PostAsync("v1/sandboxes", Json("""{"timeout":-5}""")), HttpStatusCode.BadRequest, "validation-failed", "timeout");
        await AssertProblem(await http.PostAsync("v1/sandboxes", Json("""{"memory":1}""")), HttpStatusCode.BadRequest, "validation-failed", "memory");
        await AssertProblem(await http.PostAsync("v1/sandboxes", Json("""{"envVars":{"1BAD":"x"}}""")), HttpStatusCode.BadRequest, "validation-failed", "envVars");
        await AssertProblem(await http.PostAsync("v1/sandboxes", Json("{not json")), HttpStatusCode.BadRequest, "malformed-json");
        var list = await Body(await http.GetAsync("v1/sandboxes"));
        Assert.Equal(0, list.GetProperty("sandboxes").GetArrayLength());

        var id = (await CreateAsync(http)).GetProperty("id").GetString()!;
        await AssertProblem(await http.PostAsync($"v1/sandboxes/{id}/commands", Json("""{"command":"ls"}""")), HttpStatusCode.BadRequest, "malformed-json", "command");
        await AssertProblem(await http.PostAsync($"v1/sandboxes/{id}/commands", Json("""{"cmd":""}""")), HttpStatusCode.BadRequest, "validation-failed", "cmd");
        await AssertProblem(await http.PostAsync($"v1/sandboxes/{id}/timeout", Json("""{"timeout":999999999}""")), HttpStatusCode.BadRequest, "validation-failed", "timeout");
        await AssertProblem(await http.GetAsync("v1/sandboxes?limit=0"), HttpStatusCode.BadRequest, "validation-failed", "limit");
    }

    [Fact]
    public async Task Paths_NeverLeaveTheSandbox_AndHostileCommandsStayInside()
    {
        using var http = await TenantClientAsync();
        var id = (await CreateAsync(http)).GetProperty("id").GetString()!;
        foreach (var path in new[] { "/etc/shadow", "../../etc/passwd", "/proc/1/environ", "/home/user/../../root" })
        {
            using var read = await http.GetAsync($"v1/sandboxes/{id}/files/content?path={Uri.EscapeDataString(path)}");
            Assert.True(read.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Forbidden or HttpStatusCode.NotFound, $"{path}: {read.StatusCode}");
            Assert.Equal("application/problem+json", read.Content.Headers.ContentType?.MediaType);
        }

        // A link planted inside pointing out is not followed by the file API.
        await RunAsync(http, id, new { cmd = "ln -s /etc/hostname escape" });
        using (var viaLink = await http.GetAsync($"v1/sandboxes/{id}/files/content?path=escape"))
        {
            Assert.NotEqual(HttpStatusCode.OK, viaLink.StatusCode);
        }

        // The host's secrets, its loopback and its processes are not the sandbox's; the code is not root.
        var shadow = await RunAsync(http, id, new { cmd = "cat /etc/shadow" });
        Assert.NotEqual(0, shadow[^1].Data.GetProperty("exitCode").GetInt32());
        Assert.DoesNotContain("root:", Output(shadow));
        Assert.NotEqual("0\n", Output(await RunAsync(http, id, new { cmd = "id -u" })));
        var loopback = await RunAsync(http, id, new { cmd = $"exec 3<>/dev/tcp/127.0.0.1/{new Uri(fixture.Host.Url).Port}" });
        Assert.NotEqual(0, loopback[^1].Data.GetProperty("exitCode").GetInt32());
        var processes = Output(await RunAsync(http, id, new { cmd = "ls /proc | grep -c '^[0-9]'" }));
        Assert.True(int.Parse(processes.Trim(), System.Globalization.CultureInfo.InvariantCulture) < 10, $"the sandbox sees {processes.Trim()} processes");
    }

    [Fact]
    public async Task AnotherTenant_SeesNoneOfItAndReachesNothing()
    {
        using var owner = await TenantClientAsync();
        using var intruder = await TenantClientAsync();
        var id = (await CreateAsync(owner, """{"metadata":{"suite":"tenancy"}}""")).GetProperty("id").GetString()!;
        using var started = await owner.PostAsync($"v1/sandboxes/{id}/commands", Json("""{"cmd":"sleep 30","background":true}"""));
        var commandId = (await Body(started)).GetProperty("id").GetString()!;

        await AssertProblem(await intruder.GetAsync($"v1/sandboxes/{id}"), HttpStatusCode.NotFound, "not-found");
        await AssertProblem(await intruder.DeleteAsync($"v1/sandboxes/{id}"), HttpStatusCode.NotFound, "not-found");
        await AssertProblem(await intruder.PostAsync($"v1/sandboxes/{id}/commands", Json("""{"cmd":"id"}""")), HttpStatusCode.NotFound, "not-found");
        await AssertProblem(await intruder.GetAsync($"v1/sandboxes/{id}/commands/{commandId}/events"), HttpStatusCode.NotFound, "not-found");
        await AssertProblem(await intruder.DeleteAsync($"v1/sandboxes/{id}/commands/{commandId}"), HttpStatusCode.NotFound, "not-found");
        await AssertProblem(await intruder.GetAsync($"v1/sandboxes/{id}/files/content?path=x"), HttpStatusCode.NotFound, "not-found");
        await AssertProblem(await intruder.PostAsync($"v1/sandboxes/{id}/timeout", Json("""{"timeout":60}""")), HttpStatusCode.NotFound, "not-found");
        var theirs = await Body(await intruder.GetAsync("v1/sandboxes?metadata=suite=tenancy"));
        Assert.Equal(0, theirs.GetProperty("sandboxes").GetArrayLength());

        // Still the owner's, untouched.
        Assert.Equal("running", (await Body(await owner.GetAsync($"v1/sandboxes/{id}"))).GetProperty("status").GetString());
        using var kill = await owner.DeleteAsync($"v1/sandboxes/{id}/commands/{commandId}");
        Assert.True(kill.IsSuccessStatusCode, await kill.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Quota_OneMoreThanTheLimit_Is429WithRetryAfter_AndFreedByEndingOne()
    {
        var (tenant, key) = await Tenants.CreateAsync(Storage, allowUnisolated: false);
        await Tenants.SetAsync(Storage, tenant, new Sandstorm.Core.Contracts.TenantSettings { MaxSandboxes = 2 });
        using var http = fixture.Host.Client(key);
        var first = (await CreateAsync(http, """{"timeout":600}""")).GetProperty("id").GetString()!;
        await CreateAsync(http, """{"timeout":600}""");

        using var third = await http.PostAsync("v1/sandboxes", Json("{}"));
        await AssertProblem(third, (HttpStatusCode)429, "quota-exceeded");
        Assert.NotNull(third.Headers.RetryAfter);

        (await http.DeleteAsync($"v1/sandboxes/{first}")).Dispose();
        await Poll.UntilAsync(
            async () =>
            {
                using var again = await http.PostAsync("v1/sandboxes", Json("{}"));
                return again.StatusCode;
            },
            status => status == HttpStatusCode.Created,
            TimeSpan.FromSeconds(30),
            "a sandbox to fit again once one ended");
    }

    [Fact]
    public async Task RunEvents_StreamTheStatesToTheResult_ResumeWithoutRepeats_AndAreTheTenantsOnly()
    {
        using var http = await TenantClientAsync();
        using var submitted = await http.PostAsync("v1/runs", Json("""{"code":"print('streamed')","language":"python"}"""));
        Assert.Equal(HttpStatusCode.Accepted, submitted.StatusCode);
        var runId = (await Body(submitted)).GetProperty("id").GetString()!;

        using var stream = await http.GetAsync($"v1/runs/{runId}/events", HttpCompletionOption.ResponseHeadersRead);
        var events = await ReadEventsAsync(stream);
        var result = events[^1];
        Assert.Equal("result", result.Event);
        Assert.Equal(3, result.Id);
        Assert.Equal("succeeded", result.Data.GetProperty("status").GetString());
        Assert.Equal("streamed\n", result.Data.GetProperty("stdout").GetString());
        Assert.Equal([.. events.Select(e => e.Id).Order()], events.Select(e => e.Id).ToList());

        using var request = new HttpRequestMessage(HttpMethod.Get, $"v1/runs/{runId}/events");
        request.Headers.Add("Last-Event-ID", "3");
        using var after = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", after.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain("event:", await after.Content.ReadAsStringAsync());

        using var intruder = await TenantClientAsync();
        await AssertProblem(await intruder.GetAsync($"v1/runs/{runId}/events"), HttpStatusCode.NotFound, "not-found");
        await AssertProblem(await http.GetAsync($"v1/runs/{runId}/events?after=x"), HttpStatusCode.BadRequest, "validation-failed");
    }
}
