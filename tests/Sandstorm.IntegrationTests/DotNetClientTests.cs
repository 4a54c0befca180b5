using System.Text.Json;
using Azure;
using Microsoft.Extensions.AI;
using Sandstorm.Client;
using Sandstorm.Core.Contracts;

namespace Sandstorm.IntegrationTests;

/// <summary>The .NET SDK (<c>Sandstorm.Client</c>) against the shared local host: runs, a kept sandbox's command stream and files, problems as <see cref="RequestFailedException"/>, and its AI tools.</summary>
[Collection(LocalHostCollection.Name)]
public sealed class DotNetClientTests(LocalHostFixture fixture)
{
    [Fact]
    public async Task RunAsync_PythonWithClientDefaults_ReturnsOutputAndTheSyncCallAgrees()
    {
        var client = await ClientAsync(new SandstormClientOptions { DefaultStrategy = RoutingStrategy.OptimizeCost });

        var run = (await client.RunAsync(new RunRequest { Code = "print(6*7)", Language = "python" })).Value;
        var sync = client.Run(new RunRequest { Code = "print(7*6)", Language = "python", Constraints = new RunConstraints { Isolation = IsolationLevel.Standard } }).Value;

        Assert.Equal(RunStatus.Succeeded, run.Status);
        Assert.Equal("42\n", run.Stdout);
        Assert.Equal("42\n", sync.Stdout);
        Assert.NotEqual("process", sync.Runtime);
        Assert.NotNull(run.Provenance);
        using var bundle = JsonDocument.Parse((await client.GetRunProvenanceAsync(run.Id)).Value.ToMemory());
        Assert.Equal(run.Provenance!.LogIndex, bundle.RootElement.GetProperty("logIndex").GetInt64());
    }

    [Fact]
    public async Task RunAsync_UnknownLanguage_ThrowsRequestFailedWithTheProblemType()
    {
        var client = await ClientAsync();

        var e = await Assert.ThrowsAsync<RequestFailedException>(() => client.RunAsync(new RunRequest { Code = "x", Language = "cobol" }));

        Assert.Equal(400, e.Status);
        Assert.Equal("validation-failed", e.ErrorCode);
        Assert.Contains("language", e.Message, StringComparison.Ordinal);
        Assert.NotNull(e.GetRawResponse());
    }

    [Fact]
    public async Task Sandbox_CommandsStreamFilesRoundTrip_AndAnotherTenantGets404()
    {
        var client = await ClientAsync();
        var sandbox = (await client.CreateSandboxAsync(new SandboxCreateRequest { Timeout = 120, Metadata = new Dictionary<string, string> { ["suite"] = "dotnet-sdk" } })).Value;
        try
        {
            Assert.Equal(SandboxStatus.Running, sandbox.Status);
            var events = new List<CommandEvent>();
            await foreach (var e in client.RunCommandStreamingAsync(sandbox.Id, new CommandRequest { Cmd = "echo one; echo oops >&2; echo two; exit 3" }))
            {
                events.Add(e);
            }

            Assert.Equal(CommandEventKind.Start, events[0].Kind);
            Assert.Equal(CommandEventKind.End, events[^1].Kind);
            Assert.Equal(3, events[^1].ExitCode);
            Assert.Equal("one\ntwo\n", string.Concat(events.Where(e => e.Kind == CommandEventKind.Stdout).Select(e => e.Data)));
            Assert.Equal("oops\n", string.Concat(events.Where(e => e.Kind == CommandEventKind.Stderr).Select(e => e.Data)));
            Assert.True(events.Select(e => e.Id).SequenceEqual(events.Select(e => e.Id).Order()), "event ids increase");

            await client.WriteFileAsync(sandbox.Id, "notes/hello.txt", BinaryData.FromString("héllo\n"));
            Assert.Equal("héllo\n", (await client.ReadFileAsync(sandbox.Id, "notes/hello.txt")).Value.ToString());
            Assert.Equal(["hello.txt"], (await client.ListFilesAsync(sandbox.Id, "notes")).Value.Select(e => e.Name));
            var cat = client.RunCommand(sandbox.Id, new CommandRequest { Cmd = "cat notes/hello.txt" }).Value;
            Assert.Equal(0, cat.ExitCode);
            Assert.Equal("héllo\n", cat.Stdout);

            var listed = new List<string>();
            await foreach (var s in client.GetSandboxesAsync(new Dictionary<string, string> { ["suite"] = "dotnet-sdk" }))
            {
                listed.Add(s.Id);
            }

            Assert.Contains(sandbox.Id, listed);
            Assert.Contains(sandbox.Id, client.GetSandboxes(new Dictionary<string, string> { ["suite"] = "dotnet-sdk" }).Select(s => s.Id));

            var (_, otherKey) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString);
            var other = new SandstormClient(new Uri(fixture.Host.Url), new AzureKeyCredential(otherKey));
            var notFound = await Assert.ThrowsAsync<RequestFailedException>(() => other.GetSandboxAsync(sandbox.Id));
            Assert.Equal(404, notFound.Status);
            Assert.Equal("not-found", notFound.ErrorCode);
            var streamNotFound = await Assert.ThrowsAsync<RequestFailedException>(async () =>
            {
                await foreach (var _ in other.RunCommandStreamingAsync(sandbox.Id, new CommandRequest { Cmd = "true" }))
                {
                }
            });
            Assert.Equal("not-found", streamNotFound.ErrorCode);
        }
        finally
        {
            await client.KillSandboxAsync(sandbox.Id);
        }

        // DELETE answers 202 (stopping); once the sandbox has ended, commands are refused.
        await Sandstorm.Testing.Poll.UntilAsync(async () => (await client.GetSandboxAsync(sandbox.Id)).Value.Status, s => s.IsEnded(), TimeSpan.FromSeconds(60), "the sandbox to end");
        var ended = await Assert.ThrowsAsync<RequestFailedException>(() => client.RunCommandAsync(sandbox.Id, new CommandRequest { Cmd = "true" }));
        Assert.True(ended.Status >= 400);
    }

    [Fact]
    public async Task SubmitBatchAsync_WaitUntilCompleted_OperationHasTheCounts()
    {
        var client = await ClientAsync();

        var operation = await client.SubmitBatchAsync(WaitUntil.Completed, [new RunRequest { Code = "print(1)", Language = "python" }, new RunRequest { Code = "exit(3)", Language = "python" }]);

        Assert.True(operation.HasCompleted);
        Assert.Equal("completed", operation.Value.Status);
        Assert.Equal(2, operation.Value.Total);
        Assert.Equal(2, operation.Value.Succeeded + operation.Value.Failed);
        Assert.Equal(operation.Id, client.GetBatch(operation.Id).Value.Id);
    }

    [Fact]
    public async Task AsAIFunctions_RunCodeAndSandboxTools_AnswerStructuredResultsAndErrors()
    {
        var client = await ClientAsync();
        var tools = client.AsAIFunctions().ToDictionary(t => t.Name);

        Assert.Equal(["create_sandbox", "kill_sandbox", "list_files", "read_file", "run_code", "run_command", "write_file"], tools.Keys.Order());
        var run = Json(await tools["run_code"].InvokeAsync(new AIFunctionArguments { ["code"] = "print('tool')", ["language"] = "python" }));
        Assert.Equal("tool\n", run.GetProperty("stdout").GetString());
        Assert.Equal(0, run.GetProperty("exitCode").GetInt32());
        Assert.Equal(JsonValueKind.Number, run.GetProperty("provenanceLogIndex").ValueKind);

        var refused = Json(await tools["run_code"].InvokeAsync(new AIFunctionArguments { ["code"] = "x", ["language"] = "cobol" }));
        Assert.Equal("validation-failed", refused.GetProperty("error").GetString());

        var created = Json(await tools["create_sandbox"].InvokeAsync(new AIFunctionArguments { ["timeoutSeconds"] = 60 }));
        var id = created.GetProperty("sandboxId").GetString()!;
        Json(await tools["write_file"].InvokeAsync(new AIFunctionArguments { ["sandboxId"] = id, ["path"] = "a.txt", ["content"] = "from a tool" }));
        var command = Json(await tools["run_command"].InvokeAsync(new AIFunctionArguments { ["sandboxId"] = id, ["command"] = "cat a.txt" }));
        Assert.Equal("from a tool", command.GetProperty("stdout").GetString());
        var killed = Json(await tools["kill_sandbox"].InvokeAsync(new AIFunctionArguments { ["sandboxId"] = id }));
        Assert.Equal("stopping", killed.GetProperty("status").GetString());
    }

    private static JsonElement Json(object? result) => result switch
    {
        JsonElement e => e,
        _ => JsonSerializer.SerializeToElement(result),
    };

    private async Task<SandstormClient> ClientAsync(SandstormClientOptions? options = null)
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString, allowUnisolated: false);
        return new SandstormClient(new Uri(fixture.Host.Url), new AzureKeyCredential(key), options);
    }
}
