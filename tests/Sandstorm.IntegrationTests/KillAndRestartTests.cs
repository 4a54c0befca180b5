using System.Net;
using Sandstorm.Testing;
using static Sandstorm.IntegrationTests.RunsApiTests;

namespace Sandstorm.IntegrationTests;

/// <summary>A host killed (SIGKILL) mid-run and started again finishes the run: not lost, not billed twice.</summary>
public sealed class KillAndRestartTests : IClassFixture<AzuriteFixture>
{
    private readonly AzuriteFixture _azurite;

    public KillAndRestartTests(AzuriteFixture azurite) => _azurite = azurite;

    [Fact]
    public async Task Host_KilledMidRun_FinishesTheRunAfterRestart_BilledOnce()
    {
        var (tenant, key) = await Tenants.CreateAsync(_azurite.ConnectionString);
        var hub = "kill" + Guid.NewGuid().ToString("N")[..8];
        await using var first = new LocalHostProcess(_azurite.ConnectionString, hub);
        await first.StartAsync();
        using var http = first.Client(key);
        using var submitted = await http.PostAsync("v1/runs", Json("""{"code":"import time\ntime.sleep(3)\nprint('survived')","language":"python","isolationLevel":"none","timeout":60000}"""));
        if (submitted.StatusCode != HttpStatusCode.Accepted)
        {
            await Task.Delay(1000); // the host logs the error as it answers
            Assert.Fail($"{(int)submitted.StatusCode} {await submitted.Content.ReadAsStringAsync()}\nhost log:\n{first.Log}");
        }

        var id = (await Body(submitted)).GetProperty("id").GetString();
        await Poll.UntilAsync(async () => (await Body(await http.GetAsync($"v1/runs/{id}"))).GetProperty("status").GetString(), s => s == "running", TimeSpan.FromSeconds(60), "the run to start");

        await first.KillAsync();
        await using var second = new LocalHostProcess(_azurite.ConnectionString, hub);
        await second.StartAsync();
        using var again = second.Client(key);
        var done = await Poll.UntilAsync(
            async () => await Body(await again.GetAsync($"v1/runs/{id}")),
            r => r.GetProperty("status").GetString() is not ("queued" or "running"),
            TimeSpan.FromSeconds(120),
            "the run to finish after the restart");

        Assert.Equal("succeeded", done.GetProperty("status").GetString());
        Assert.Equal("survived\n", done.GetProperty("stdout").GetString());
        Assert.Equal(1, await Tenants.CountAsync(_azurite.ConnectionString, "ledger", tenant));
        Assert.Equal(HttpStatusCode.OK, (await again.GetAsync($"v1/runs/{id}/provenance")).StatusCode);
    }
}
