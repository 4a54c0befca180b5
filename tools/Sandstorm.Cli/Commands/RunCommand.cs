using System.Globalization;
using System.Text.Json;
using Azure;
using Sandstorm.Client;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Cli.Commands;

/// <summary><c>sandstorm run</c>: submits code, waits for the result and prints it.</summary>
public static class RunCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            var (flags, _) = ControlPlane.Parse(args, "json");
            var code = flags.TryGetValue("code", out var text) ? text
                : flags.TryGetValue("file", out var file) ? await File.ReadAllTextAsync(file)
                : throw new ArgumentException("--code TEXT or --file PATH is required");
            var request = new RunRequest
            {
                Code = code,
                Language = flags.GetValueOrDefault("language") ?? throw new ArgumentException("--language is required"),
                IsolationLevel = Enum<IsolationLevel>(flags.GetValueOrDefault("isolation") ?? "standard"),
                Strategy = Enum<RoutingStrategy>(flags.GetValueOrDefault("strategy") ?? "balanced"),
                Timeout = int.Parse(flags.GetValueOrDefault("timeout") ?? "30000", CultureInfo.InvariantCulture),
                Memory = int.Parse(flags.GetValueOrDefault("memory") ?? "512", CultureInfo.InvariantCulture),
                Cpu = double.Parse(flags.GetValueOrDefault("cpu") ?? "1", CultureInfo.InvariantCulture),
            };
            var wait = int.Parse(flags.GetValueOrDefault("wait") ?? "60", CultureInfo.InvariantCulture);
            var client = ControlPlane.CreateSandstormClient(flags, new SandstormClientOptions { RunWait = TimeSpan.FromSeconds(wait) });
            var response = flags.ContainsKey("json") || Console.IsOutputRedirected ? await client.RunAsync(request) : await RunWithStepsAsync(client, request);
            var result = response.Value;
            Print(result, flags.ContainsKey("json"), response.GetRawResponse().Content.ToString());
            return result.Status == RunStatus.Succeeded ? 0 : 1;
        }
        catch (RequestFailedException e)
        {
            return SandboxCommand.Failed(e, args.Contains("--json"));
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IOException or HttpRequestException)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }

    // On a terminal: the run's steps as they happen (queued, placed, running). The runs API has no output stream, so the
    // output is printed when the run settles; a kept sandbox's `sandbox exec` streams.
    private static async Task<Response<RunResult>> RunWithStepsAsync(SandstormClient client, RunRequest request)
    {
        var response = await client.SubmitRunAsync(request);
        return await Spectre.Console.AnsiConsole.Status().StartAsync($"run {response.Value.Id}: submitted", async status =>
        {
            while (!response.Value.Status.IsTerminal())
            {
                var r = response.Value;
                status.Status = Spectre.Console.Markup.Escape(r.Provider is null
                    ? $"run {r.Id}: {Wire(r.Status)}"
                    : $"run {r.Id}: {Wire(r.Status)} on {r.Provider}/{r.Runtime}/{r.Region}");
                await Task.Delay(TimeSpan.FromMilliseconds(300));
                response = await client.GetRunAsync(r.Id);
            }

            return response;
        });
    }

    private static string Wire<T>(T value)
        where T : struct, Enum => JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());

    /// <summary>Prints a run for people (or as the raw JSON).</summary>
    public static void Print(RunResult r, bool json, string raw)
    {
        if (json)
        {
            Console.WriteLine(raw);
            return;
        }

        Console.WriteLine($"run       {r.Id}");
        Console.WriteLine($"status    {r.Status.ToString().ToLowerInvariant()}");
        if (r.Provider is not null)
        {
            Console.WriteLine($"placement {r.Provider}/{r.Runtime}/{r.Region}  ({r.Route?.Reason})");
        }

        if (r.ExitCode is not null)
        {
            Console.WriteLine($"exit      {r.ExitCode}  in {r.Duration} ms, cost ${r.Cost?.Total:0.########}");
        }

        if (r.Error is not null)
        {
            Console.WriteLine($"error     {r.Error.Code}: {r.Error.Message}");
        }

        if (r.Provenance is not null)
        {
            Console.WriteLine($"provenance log index {r.Provenance.LogIndex}");
        }

        if (!string.IsNullOrEmpty(r.Stdout))
        {
            Console.WriteLine("--- stdout" + (r.Truncated ? " (truncated)" : ""));
            Console.Write(r.Stdout);
        }

        if (!string.IsNullOrEmpty(r.Stderr))
        {
            Console.WriteLine("--- stderr");
            Console.Write(r.Stderr);
        }
    }

    /// <summary>An enum from its wire name (<c>optimize_cost</c>).</summary>
    public static T Enum<T>(string value)
        where T : struct, Enum =>
        JsonSerializer.Deserialize<T>($"\"{value}\"", SandstormJson.Options);
}
