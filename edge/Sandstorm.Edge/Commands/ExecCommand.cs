using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Commands;

/// <summary><c>sandstorm-edge exec</c>: runs one sandbox on this machine and prints its <see cref="ExecutionResult"/>.</summary>
public sealed class ExecCommand : IEdgeCommand
{
    /// <summary>Exit code when no runtime here gives the requested isolation.</summary>
    public const int RefusedExitCode = 3;

    private static readonly string[] Levels = ["none", "standard", "strong", "maximum"];

    public string Name => "exec";

    public string Summary => "run code once in a local sandbox and print the result";

    public string Usage => """
        usage: sandstorm-edge exec --language python|javascript|typescript|bash (--code TEXT | --file PATH)
                                   [--isolation none|standard|strong|maximum] [--runtime NAME]
                                   [--memory MiB] [--cpu N] [--timeout SECONDS] [--json]
          --isolation  isolation level (default standard); the best working runtime for it is used
          --runtime    a specific runtime (process, bwrap, runc, podman, gvisor); must meet the level
          --memory     memory limit in MiB (default 512)      --cpu      CPU cores (default 1)
          --timeout    wall-clock limit in seconds (default 30)
          --json       print the ExecutionResult as JSON
        exit codes: 0 ran (see the result for the code's own exit), 2 bad arguments, 3 isolation unavailable;
        without --json the code's own exit code is returned.
        """;

    public async Task<int> RunAsync(IReadOnlyList<string> args, EdgeContext context, CancellationToken ct)
    {
        var parsed = ParsedArguments.Parse(args, ["isolation", "runtime", "language", "code", "file", "memory", "cpu", "timeout"], ["json"]);
        var level = Enum.Parse<IsolationLevel>(parsed.OneOf("isolation", Levels, "standard"), ignoreCase: true);
        var language = parsed.OneOf("language", [.. Languages.Supported]);
        var code = parsed.Value("code");
        var file = parsed.Value("file");
        if ((code is null) == (file is null))
        {
            throw new UsageException("give exactly one of --code TEXT or --file PATH");
        }

        if (file is not null)
        {
            try
            {
                code = await File.ReadAllTextAsync(file, ct);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"cannot read --file '{file}': {e.Message}");
            }
        }

        var spec = new ExecutionSpec
        {
            Language = language,
            Code = code!,
            MemoryMiB = parsed.Int("memory", 512, 16, 1024 * 1024),
            Cpu = parsed.Number("cpu", 1, 0, 1024),
            Timeout = TimeSpan.FromSeconds(parsed.Number("timeout", 30, 0, 24 * 3600)),
            IsolationLevel = level,
        };
        var json = parsed.Has("json");

        var selector = new RuntimeSelector(context.CreateRuntimes(context.RuntimeOptions));
        ExecutionResult result;
        try
        {
            var runtime = await selector.SelectAsync(level, parsed.Value("runtime"), ct);
            result = await runtime.ExecuteAsync(spec, ct);
        }
        catch (SandstormException e) when (e.Code == ErrorCodes.IsolationUnavailable)
        {
            if (json)
            {
                await context.Out.WriteLineAsync(JsonSerializer.Serialize(new RunError(e.Code, e.Message), SandstormJson.Options));
            }

            await context.Error.WriteLineAsync($"sandstorm-edge exec: {e.Message}");
            return RefusedExitCode;
        }

        if (json)
        {
            await context.Out.WriteLineAsync(JsonSerializer.Serialize(result, SandstormJson.Options));
            return 0;
        }

        await context.Out.WriteAsync(result.Stdout);
        await context.Error.WriteAsync(result.Stderr);
        var verdict = result.TimedOut ? "timed out" : result.OomKilled ? "killed: out of memory" : $"exit {result.ExitCode}";
        await context.Error.WriteLineAsync(
            $"[{result.Runtime}] {verdict}; wall {result.WallTimeMs} ms, cpu {result.CpuTimeMs} ms, peak {result.PeakMemoryBytes / (1024 * 1024)} MiB{(result.Truncated ? "; output truncated" : "")}");
        return result.TimedOut ? 124 : result.ExitCode ?? 137;
    }
}
