using System.Net;
using Sandstorm.Testing;
using static Sandstorm.IntegrationTests.RunsApiTests;

namespace Sandstorm.IntegrationTests;

/// <summary>
/// A host killed (SIGKILL) mid-run and started again finishes the run: not lost, not billed twice. A run acknowledged
/// (<c>202</c>) by the host over its own Azurite survives the host's SIGKILL right after (its Azurite is stopped so that it
/// saves) and a machine crash (Azurite SIGKILLed too, losing its unsaved writes: the intake journal has the run), and its
/// code runs exactly once.
/// </summary>
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

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task EmbeddedHost_KilledRightAfterAccepted_RunFoundAndRunsOnceAfterRestart(bool machineCrash)
    {
        var state = Directory.CreateTempSubdirectory("sandstorm-crash-").FullName;
        var counter = Path.Combine(state, "executions");
        var hub = "crash" + Guid.NewGuid().ToString("N")[..8];

        // The first start creates the development tenant; a graceful stop has Azurite save it.
        await using var first = new LocalHostProcess(null, hub, state: state);
        await first.StartAsync();
        await first.StopAsync();

        await using var second = new LocalHostProcess(null, hub, state: state);
        await second.StartAsync();
        var azurite = second.AzuritePid;
        using var http = second.Client();
        var code = $"open({System.Text.Json.JsonSerializer.Serialize(counter)}, 'a').write('x\\n')\nprint('once')";
        using var submitted = await http.PostAsync("v1/runs", Json($$"""{"code":{{System.Text.Json.JsonSerializer.Serialize(code)}},"language":"python","isolationLevel":"none","timeout":60000}"""));
        Assert.Equal(HttpStatusCode.Accepted, submitted.StatusCode);
        await second.KillAsync();
        if (machineCrash)
        {
            using var stale = System.Diagnostics.Process.GetProcessById(azurite);
            stale.Kill();
            await stale.WaitForExitAsync();
        }

        var id = (await Body(submitted)).GetProperty("id").GetString();
        await using var third = new LocalHostProcess(null, hub, state: state);
        await third.StartAsync();
        using var again = third.Client();
        var done = await Poll.UntilAsync(
            async () =>
            {
                using var response = await again.GetAsync($"v1/runs/{id}");
                return response.StatusCode == HttpStatusCode.OK ? await Body(response) : default;
            },
            r => r.ValueKind == System.Text.Json.JsonValueKind.Object && r.GetProperty("status").GetString() is not ("queued" or "running"),
            TimeSpan.FromSeconds(120),
            "the accepted run to be found and finish after the restart");

        Assert.Equal("succeeded", done.GetProperty("status").GetString());
        Assert.Equal("once\n", done.GetProperty("stdout").GetString());
        Assert.Equal("x\n", await File.ReadAllTextAsync(counter));
    }
}
