using System.Text.Json;

namespace Sandstorm.IntegrationTests;

/// <summary>The <c>sandstorm</c> CLI's <c>sandbox</c> commands (on Sandstorm.Client) as a script would use them, against the shared local host.</summary>
[Collection(LocalHostCollection.Name)]
public sealed class CliSandboxTests(LocalHostFixture fixture)
{
    [Fact]
    public async Task SandboxCommands_CreateExecLsKill_ExitCodesAndJsonAScriptCanUse()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString, allowUnisolated: false);

        var created = await CliAsync(key, "sandbox", "create", "--timeout", "120", "--metadata", "suite=cli", "--json");
        Assert.True(created.ExitCode == 0, created.Stderr);
        var id = JsonDocument.Parse(created.Stdout).RootElement.GetProperty("id").GetString()!;

        var exec = await CliAsync(key, "sandbox", "exec", id, "--", "echo out; echo err >&2; exit 4");
        Assert.Equal(4, exec.ExitCode);
        Assert.Equal("out\n", exec.Stdout);
        Assert.Equal("err\n", exec.Stderr);

        var events = await CliAsync(key, "sandbox", "exec", id, "--json", "--", "printf hi");
        Assert.Equal(0, events.ExitCode);
        var kinds = events.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(["start", "stdout", "end"], kinds.Select(e => e.GetProperty("kind").GetString()));
        Assert.Equal("hi", kinds[1].GetProperty("data").GetString());

        var listed = await CliAsync(key, "sandbox", "ls", "--json");
        Assert.Equal(0, listed.ExitCode);
        Assert.Contains(id, JsonDocument.Parse(listed.Stdout).RootElement.GetProperty("sandboxes").EnumerateArray().Select(s => s.GetProperty("id").GetString()));
        var table = await CliAsync(key, "sandbox", "ls");
        Assert.Contains(id, table.Stdout, StringComparison.Ordinal);

        Assert.Equal(0, (await CliAsync(key, "sandbox", "kill", id)).ExitCode);

        var (_, otherKey) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
        var other = await CliAsync(otherKey, "sandbox", "exec", id, "--", "true");
        Assert.Equal(1, other.ExitCode);
        Assert.Contains("404 not-found", other.Stderr, StringComparison.Ordinal);
        Assert.Equal(2, (await CliAsync(key, "sandbox", "exec")).ExitCode);
    }

    [Fact]
    public async Task Run_JsonAndARefusal_PrintTheRunAndTheProblemCode()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString, allowUnisolated: false);

        var run = await CliAsync(key, "run", "--language", "python", "--code", "print(6*7)", "--json");
        var refused = await CliAsync(key, "run", "--language", "cobol", "--code", "x");

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Equal("42\n", JsonDocument.Parse(run.Stdout).RootElement.GetProperty("stdout").GetString());
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("400 validation-failed", refused.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BatchSubmitWatch_JsonLinesFile_WaitsAndExitsNonZeroWhenAnItemFailed()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString, allowUnisolated: false);
        var file = Path.Combine(Directory.CreateTempSubdirectory("sandstorm-cli-").FullName, "batch.jsonl");
        await File.WriteAllTextAsync(file, """
            {"code":"print(1)","language":"python"}
            {"code":"exit(3)","language":"python"}
            """);

        var watched = await CliAsync(key, "batch", "submit", file, "--watch", "--json");

        Assert.True(watched.ExitCode == 1, watched.Stdout + watched.Stderr);
        var batch = JsonDocument.Parse(watched.Stdout).RootElement;
        Assert.Equal("completed", batch.GetProperty("status").GetString());
        Assert.Equal(2, batch.GetProperty("total").GetInt32());
        Assert.Equal(1, batch.GetProperty("succeeded").GetInt32());
        var again = await CliAsync(key, "batch", "watch", batch.GetProperty("id").GetString()!);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("1 succeeded, 1 failed", again.Stdout, StringComparison.Ordinal);
    }

    private Task<(int ExitCode, string Stdout, string Stderr)> CliAsync(string key, params string[] args) =>
        CliProcess.RunAsync(new Dictionary<string, string> { ["SANDSTORM_URL"] = fixture.Host.Url, ["SANDSTORM_API_KEY"] = key }, args);
}
