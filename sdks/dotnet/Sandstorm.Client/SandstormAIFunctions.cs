using System.ComponentModel;
using Azure;
using Microsoft.Extensions.AI;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Client;

/// <summary>
/// Sandstorm as <see cref="AIFunction"/> tools for a .NET agent (<c>ChatOptions.Tools = [.. client.AsAIFunctions()]</c>):
/// <c>run_code</c> (one shot) and the kept-sandbox tools <c>create_sandbox</c>, <c>run_command</c>, <c>write_file</c>,
/// <c>read_file</c>, <c>list_files</c>, <c>kill_sandbox</c>. A refusal comes back as <c>{error, status, message}</c> for the
/// model to read instead of an exception.
/// </summary>
public static class SandstormAIFunctions
{
    /// <summary>Every Sandstorm tool, bound to <paramref name="client"/>.</summary>
    public static IReadOnlyList<AIFunction> AsAIFunctions(this SandstormClient client)
    {
        ArgumentNullException.ThrowIfNull(client);
        return
        [
            AIFunctionFactory.Create(
                async (
                    [Description("The program to run.")] string code,
                    [Description("python, javascript, typescript or bash.")] string language,
                    [Description("Isolation: none, standard (containers), strong (gVisor) or maximum (microVM). Default standard.")] string? isolation = null,
                    [Description("Most to pay for the run, in USD.")] decimal? maxCost = null,
                    [Description("Routing strategy: optimize_cost, optimize_latency, balanced, optimize_carbon.")] string? strategy = null,
                    CancellationToken cancellationToken = default) => await Guard(async () =>
                {
                    var request = new RunRequest
                    {
                        Code = code,
                        Language = language,
                        IsolationLevel = Parse(isolation, IsolationLevel.Standard),
                        Strategy = Parse(strategy, RoutingStrategy.Balanced),
                        Constraints = maxCost is { } max ? new RunConstraints { MaxCost = max } : null,
                    };
                    var run = (await client.RunAsync(request, cancellationToken).ConfigureAwait(false)).Value;
                    return (object)new
                    {
                        runId = run.Id,
                        status = Name(run.Status),
                        exitCode = run.ExitCode,
                        stdout = run.Stdout,
                        stderr = run.Stderr,
                        cost = run.Cost?.Total,
                        provider = run.Provider,
                        runtime = run.Runtime,
                        provenanceLogIndex = run.Provenance?.LogIndex,
                        error = run.Error?.Message,
                    };
                }).ConfigureAwait(false),
                "run_code",
                "Runs code once in a fresh isolated sandbox and returns its exit code, output, cost, where it ran and its provenance log index."),
            AIFunctionFactory.Create(
                async (
                    [Description("Lifetime in seconds (default 300).")] int? timeoutSeconds = null,
                    [Description("Isolation: none, standard, strong or maximum. Default standard.")] string? isolation = null,
                    CancellationToken cancellationToken = default) => await Guard(async () =>
                {
                    var sandbox = (await client.CreateSandboxAsync(new SandboxCreateRequest { Timeout = timeoutSeconds, IsolationLevel = Parse(isolation, IsolationLevel.Standard) }, cancellationToken).ConfigureAwait(false)).Value;
                    return (object)new { sandboxId = sandbox.Id, status = Name(sandbox.Status), provider = sandbox.Provider, runtime = sandbox.Runtime, expiresAt = sandbox.ExpiresAt };
                }).ConfigureAwait(false),
                "create_sandbox",
                "Creates a sandbox that keeps its files and installed state across commands; returns its id."),
            AIFunctionFactory.Create(
                async (string sandboxId, [Description("A bash command line.")] string command, [Description("Working directory (default /home/user).")] string? cwd = null, CancellationToken cancellationToken = default) =>
                    await Guard(async () =>
                    {
                        var result = (await client.RunCommandAsync(sandboxId, new CommandRequest { Cmd = command, Cwd = cwd }, cancellationToken).ConfigureAwait(false)).Value;
                        return (object)new { exitCode = result.ExitCode, stdout = result.Stdout, stderr = result.Stderr, status = result.Status, error = result.Error };
                    }).ConfigureAwait(false),
                "run_command",
                "Runs a shell command in a sandbox and returns its exit code and output."),
            AIFunctionFactory.Create(
                async (string sandboxId, [Description("Path under /home/user (or relative to it) or /tmp.")] string path, [Description("The file's text.")] string content, CancellationToken cancellationToken) =>
                    await Guard(async () =>
                    {
                        var entry = (await client.WriteFileAsync(sandboxId, path, BinaryData.FromString(content), cancellationToken).ConfigureAwait(false)).Value;
                        return (object)new { path = entry.Path, size = entry.Size };
                    }).ConfigureAwait(false),
                "write_file",
                "Writes a text file in a sandbox (its directories are created)."),
            AIFunctionFactory.Create(
                async (string sandboxId, string path, CancellationToken cancellationToken) =>
                    await Guard(async () => (object)new { path, content = (await client.ReadFileAsync(sandboxId, path, cancellationToken).ConfigureAwait(false)).Value.ToString() }).ConfigureAwait(false),
                "read_file",
                "Reads a text file of a sandbox."),
            AIFunctionFactory.Create(
                async (string sandboxId, [Description("Directory (default /home/user).")] string? path = null, CancellationToken cancellationToken = default) =>
                    await Guard(async () => (object)new
                    {
                        entries = (await client.ListFilesAsync(sandboxId, path ?? "/home/user", 1, cancellationToken).ConfigureAwait(false)).Value
                            .Select(e => new { name = e.Name, type = e.Type, path = e.Path, size = e.Size }),
                    }).ConfigureAwait(false),
                "list_files",
                "Lists a directory of a sandbox."),
            AIFunctionFactory.Create(
                async (string sandboxId, CancellationToken cancellationToken) =>
                    await Guard(async () =>
                    {
                        await client.KillSandboxAsync(sandboxId, cancellationToken).ConfigureAwait(false);
                        return (object)new { sandboxId, status = "stopping" };
                    }).ConfigureAwait(false),
                "kill_sandbox",
                "Ends a sandbox: everything in it is killed and its record signed."),
        ];
    }

    private static async Task<object> Guard(Func<Task<object>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (RequestFailedException e)
        {
            return new { error = e.ErrorCode ?? "error", status = e.Status, message = e.Message };
        }
        catch (ArgumentException e)
        {
            return new { error = "validation-failed", status = 400, message = e.Message };
        }
    }

    private static T Parse<T>(string? value, T fallback)
        where T : struct, Enum =>
        string.IsNullOrWhiteSpace(value)
            ? fallback
            : Enum.TryParse<T>(value.Replace("_", "", StringComparison.Ordinal), ignoreCase: true, out var parsed) && Enum.IsDefined(parsed)
                ? parsed
                : throw new ArgumentException($"'{value}' is not one of {string.Join(", ", Enum.GetNames<T>().Select(n => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(n)))}");

    private static string Name<T>(T value)
        where T : struct, Enum => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());
}
