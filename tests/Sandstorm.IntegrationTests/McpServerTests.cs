using System.Text.Json;
using Sandstorm.Testing;

namespace Sandstorm.IntegrationTests;

/// <summary>
/// The MCP server at <c>/mcp</c> of the real local host, driven as an agent drives it: the official TypeScript MCP client
/// (<c>@modelcontextprotocol/sdk</c>, streamable HTTP, Bearer API key) runs <c>mcp/mcp-agent.mjs</c>, which prints what it saw.
/// </summary>
[Collection(LocalHostCollection.Name)]
public sealed class McpServerTests(LocalHostFixture fixture)
{
    private static readonly string[] Tools =
        ["create_sandbox", "get_run", "kill_sandbox", "list_files", "read_file", "run_code", "run_command", "verify_provenance", "write_file"];

    [Fact]
    public async Task McpClient_AgentSession_RunsCodeAndDrivesAKeptSandbox_AndRefusesWhatItMust()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString, allowUnisolated: false);
        var (_, otherKey) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString, allowUnisolated: false);

        var seen = await RunAgentAsync(new Dictionary<string, string>
        {
            ["SANDSTORM_URL"] = fixture.Host.Url,
            ["SANDSTORM_API_KEY"] = key,
            ["SANDSTORM_OTHER_API_KEY"] = otherKey,
        });

        Assert.Equal(Tools, seen.GetProperty("tools").EnumerateArray().Select(t => t.GetString()));

        // run_code: one shot with intent, waited for, structured result.
        var run = Structured(seen, "run", error: false);
        Assert.Equal("succeeded", run.GetProperty("status").GetString());
        Assert.Equal(0, run.GetProperty("exitCode").GetInt32());
        Assert.Equal("42\n", run.GetProperty("stdout").GetString());
        Assert.Equal("local", run.GetProperty("provider").GetString());
        Assert.True(run.GetProperty("cost").TryGetProperty("total", out _), $"run_code reports the cost: {run}");
        Assert.True(run.GetProperty("provenanceLogIndex").GetInt64() >= 0);
        var runId = run.GetProperty("id").GetString();
        Assert.Equal(runId, Structured(seen, "getRun", error: false).GetProperty("id").GetString());
        var verify = Structured(seen, "verify", error: false);
        Assert.True(verify.GetProperty("verified").GetBoolean(), $"the run's provenance verifies: {verify}");
        Assert.Equal(run.GetProperty("provenanceLogIndex").GetInt64(), verify.GetProperty("logIndex").GetInt64());
        Assert.Contains("stdout digest", verify.GetProperty("passed").EnumerateArray().Select(p => p.GetString()!), StringComparer.Ordinal);

        // Bad input: tool errors naming the problem, as the REST API would.
        Assert.Equal("validation-failed", Problem(seen, "badLanguage").GetProperty("code").GetString());
        var isolation = Problem(seen, "badIsolation");
        Assert.Equal("malformed-json", isolation.GetProperty("code").GetString());
        Assert.True(isolation.GetProperty("errors").TryGetProperty("isolationLevel", out _), $"the error names the field: {isolation}");

        // A kept sandbox: create, files, a command, refusal of a path outside it, kill.
        var sandbox = Structured(seen, "create", error: false);
        var sandboxId = sandbox.GetProperty("id").GetString();
        Assert.StartsWith("sbx_", sandboxId, StringComparison.Ordinal);
        Assert.Equal("running", sandbox.GetProperty("status").GetString());
        Assert.Equal("/home/user/notes/hello.txt", Structured(seen, "write", error: false).GetProperty("path").GetString());
        Assert.Equal("hello from an agent\n", Structured(seen, "read", error: false).GetProperty("content").GetString());
        Assert.Contains(
            "hello.txt",
            Structured(seen, "list", error: false).GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("name").GetString()!),
            StringComparer.Ordinal);
        var command = Structured(seen, "command", error: false);
        Assert.Equal(3, command.GetProperty("exitCode").GetInt32());
        Assert.Equal("hello from an agent\n", command.GetProperty("stdout").GetString());
        Assert.Equal("oops\n", command.GetProperty("stderr").GetString());
        Assert.Equal("path-outside", Problem(seen, "outside").GetProperty("code").GetString());

        // Another tenant's ids are not found, whatever the tool.
        foreach (var name in new[] { "otherCommand", "otherRead", "otherKill", "otherRun" })
        {
            var problem = Problem(seen, name);
            Assert.Equal("not-found", problem.GetProperty("code").GetString());
            Assert.Equal(404, problem.GetProperty("status").GetInt32());
        }

        Assert.Equal("stopping", Structured(seen, "kill", error: false).GetProperty("status").GetString());

        // No key or a wrong key: 401 before any MCP message is handled, as problem+json.
        foreach (var name in new[] { "noKey", "wrongKey" })
        {
            Assert.False(seen.GetProperty(name).GetProperty("connected").GetBoolean(), $"{name} must not connect");
            Assert.Contains("401", seen.GetProperty(name).GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        var raw = seen.GetProperty("rawNoKey");
        Assert.Equal(401, raw.GetProperty("status").GetInt32());
        Assert.Equal("application/problem+json", raw.GetProperty("contentType").GetString());
        Assert.Equal("Bearer", raw.GetProperty("wwwAuthenticate").GetString());
        Assert.Equal("unauthorized", raw.GetProperty("body").GetProperty("code").GetString());
    }

    private static JsonElement Structured(JsonElement seen, string name, bool error)
    {
        var result = seen.GetProperty(name);
        Assert.True(result.GetProperty("isError").GetBoolean() == error, $"{name}: isError should be {error}: {result}");
        Assert.Equal(JsonValueKind.Object, result.GetProperty("structured").ValueKind);
        return result.GetProperty("structured");
    }

    private static JsonElement Problem(JsonElement seen, string name) => Structured(seen, name, error: true).GetProperty("error");

    private static async Task<JsonElement> RunAgentAsync(IReadOnlyDictionary<string, string> environment)
    {
        var (exit, stdout, stderr) = await NodeScript.RunAsync([Path.Combine(AppContext.BaseDirectory, "mcp", "mcp-agent.mjs")], environment, TimeSpan.FromMinutes(3));
        Assert.True(exit == 0, $"mcp-agent.mjs exited {exit}:\n{stderr}\n{stdout}");
        return JsonDocument.Parse(stdout).RootElement.Clone();
    }
}
