using System.Globalization;
using System.Text.Json;
using Azure;
using Sandstorm.Client;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Spectre.Console;

namespace Sandstorm.Cli.Commands;

/// <summary><c>sandstorm sandbox create|exec|ls|kill</c>: kept sandboxes through <see cref="SandstormClient"/>.</summary>
public static class SandboxCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        // Everything after "--" is the command line of exec, never flags of the CLI.
        var split = Array.IndexOf(args, "--");
        var (own, tail) = split < 0 ? (args, Array.Empty<string>()) : (args[..split], args[(split + 1)..]);
        try
        {
            var (flags, positional) = ControlPlane.Parse(own, "json", "all");
            var json = flags.ContainsKey("json");
            var client = ControlPlane.CreateSandstormClient(flags);
            return positional switch
            {
                ["create"] => await CreateAsync(client, flags, json),
                ["exec", var id, .. var words] => await ExecAsync(client, id, string.Join(' ', words.Concat(tail)), flags, json),
                ["ls"] => await ListAsync(client, flags.ContainsKey("all"), json),
                ["kill", var id] => await KillAsync(client, id, json),
                _ => Usage.Print(2, "usage: sandstorm sandbox create|exec ID -- CMD|ls|kill ID"),
            };
        }
        catch (RequestFailedException e)
        {
            return Failed(e, own.Contains("--json"));
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }

    /// <summary>Prints a refusal (its problem code) and answers the exit code scripts see: 1.</summary>
    public static int Failed(RequestFailedException e, bool json)
    {
        if (json)
        {
            Console.Error.WriteLine(JsonSerializer.Serialize(new { error = e.ErrorCode, status = e.Status, message = e.Message }));
        }
        else
        {
            Console.Error.WriteLine($"{e.Status} {e.ErrorCode}: {e.Message.Split('\n')[0]}");
        }

        return 1;
    }

    private static async Task<int> CreateAsync(SandstormClient client, Dictionary<string, string> flags, bool json)
    {
        var metadata = flags.TryGetValue("metadata", out var pairs)
            ? pairs.Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 ? p[1] : "", StringComparer.Ordinal)
            : null;
        var request = new SandboxCreateRequest
        {
            IsolationLevel = flags.TryGetValue("isolation", out var isolation) ? RunCommand.Enum<IsolationLevel>(isolation) : IsolationLevel.Standard,
            Timeout = flags.TryGetValue("timeout", out var timeout) ? int.Parse(timeout, CultureInfo.InvariantCulture) : null,
            Metadata = metadata,
        };
        var response = await client.CreateSandboxAsync(request);
        if (json)
        {
            Console.WriteLine(response.GetRawResponse().Content.ToString());
        }
        else
        {
            var s = response.Value;
            Console.WriteLine(s.Id);
            Console.Error.WriteLine($"{Name(s.Status)} on {s.Provider}/{s.Runtime}, isolation {Name(s.IsolationLevel)}, until {s.ExpiresAt:u}");
        }

        return 0;
    }

    // Output is written as each event arrives; the exit code is the command's (or 1 when it ended without one).
    private static async Task<int> ExecAsync(SandstormClient client, string id, string command, Dictionary<string, string> flags, bool json)
    {
        if (string.IsNullOrWhiteSpace(command))
        {
            throw new ArgumentException("usage: sandstorm sandbox exec ID [--cwd DIR] -- CMD...");
        }

        var request = new CommandRequest
        {
            Cmd = command,
            Cwd = flags.GetValueOrDefault("cwd"),
            Timeout = flags.TryGetValue("timeout", out var t) ? int.Parse(t, CultureInfo.InvariantCulture) : null,
        };
        int? exit = null;
        using var stdout = Console.OpenStandardOutput();
        using var stderr = Console.OpenStandardError();
        await foreach (var e in client.RunCommandStreamingAsync(id, request))
        {
            if (json)
            {
                Console.WriteLine(JsonSerializer.Serialize(new { id = e.Id, kind = Name(e.Kind), e.CommandId, e.Data, e.Status, e.ExitCode, e.Signal, e.Error, e.DurationMs }, SandstormJson.Options));
                Console.Out.Flush();
            }
            else if (e.Kind is CommandEventKind.Stdout or CommandEventKind.Stderr)
            {
                var target = e.Kind == CommandEventKind.Stdout ? stdout : stderr;
                await target.WriteAsync(System.Text.Encoding.UTF8.GetBytes(e.Data ?? ""));
                await target.FlushAsync();
            }
            else if (e.Kind == CommandEventKind.End && e.Status != "exited")
            {
                Console.Error.WriteLine($"command {e.Status}{(e.Error is null ? "" : ": " + e.Error)}");
            }

            if (e.Kind == CommandEventKind.End)
            {
                exit = e.ExitCode;
            }
        }

        return exit ?? 1;
    }

    private static async Task<int> ListAsync(SandstormClient client, bool all, bool json)
    {
        var sandboxes = new List<SandboxInfo>();
        await foreach (var s in client.GetSandboxesAsync(includeEnded: all))
        {
            sandboxes.Add(s);
        }

        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new { sandboxes }, SandstormJson.Options));
            return 0;
        }

        string[] headers = ["ID", "STATUS", "PLACEMENT", "ISOLATION", "COMMANDS", "EXPIRES", "METADATA"];
        var rows = sandboxes.Select(s => new[]
        {
            s.Id,
            Name(s.Status),
            $"{s.Provider}/{s.Runtime}",
            Name(s.IsolationLevel),
            s.Commands.ToString(CultureInfo.InvariantCulture),
            s.ExpiresAt.ToString("u", CultureInfo.InvariantCulture),
            string.Join(',', s.Metadata.Select(p => $"{p.Key}={p.Value}")),
        }).ToList();

        // Piped output has no terminal: a tab-separated line per sandbox, whole, keeps it greppable and cut-able.
        if (Console.IsOutputRedirected)
        {
            foreach (var line in rows.Prepend(headers))
            {
                Console.WriteLine(string.Join('\t', line));
            }

            return 0;
        }

        var table = new Table().Border(TableBorder.Simple)
            .AddColumn(new TableColumn(headers[0]).NoWrap())
            .AddColumns(headers[1..]);
        foreach (var row in rows)
        {
            table.AddRow([.. row.Select(Markup.Escape)]);
        }

        AnsiConsole.Write(table);
        return 0;
    }

    private static async Task<int> KillAsync(SandstormClient client, string id, bool json)
    {
        var response = await client.KillSandboxAsync(id);
        Console.WriteLine(json ? response.Content.ToString() : $"{id} stopping");
        return 0;
    }

    private static string Name<T>(T value)
        where T : struct, Enum => JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());
}
