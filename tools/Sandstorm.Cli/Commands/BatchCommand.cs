using System.Globalization;
using System.Text.Json;
using Azure;
using Sandstorm.Client;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Spectre.Console;

namespace Sandstorm.Cli.Commands;

/// <summary><c>sandstorm batch submit|watch</c>: batches through <see cref="SandstormClient"/>, with a progress bar on a terminal.</summary>
public static class BatchCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            var (flags, positional) = ControlPlane.Parse(args, "json", "watch");
            var json = flags.ContainsKey("json");
            var client = ControlPlane.CreateSandstormClient(flags);
            return positional switch
            {
                ["submit", var file] => await SubmitAsync(client, file, flags.ContainsKey("watch"), json),
                ["watch", var id] => await WatchAsync(client, id, json),
                _ => Usage.Print(2, "usage: sandstorm batch submit FILE [--watch] [--json] | sandstorm batch watch ID [--json]"),
            };
        }
        catch (RequestFailedException e)
        {
            return SandboxCommand.Failed(e, args.Contains("--json"));
        }
        catch (Exception e) when (e is ArgumentException or FormatException or IOException or JsonException or InvalidOperationException)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }

    // FILE holds a JSON array of run requests, or one per line (JSON Lines).
    private static async Task<int> SubmitAsync(SandstormClient client, string file, bool watch, bool json)
    {
        var text = await File.ReadAllTextAsync(file);
        var requests = text.TrimStart().StartsWith('[')
            ? JsonSerializer.Deserialize<List<RunRequest>>(text, SandstormJson.Strict)!
            : [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(l => JsonSerializer.Deserialize<RunRequest>(l, SandstormJson.Strict)!)];
        var operation = await client.SubmitBatchAsync(WaitUntil.Started, requests);
        if (!watch)
        {
            Console.WriteLine(json ? JsonSerializer.Serialize(new { id = operation.Id, total = requests.Count }) : operation.Id);
            return 0;
        }

        return await WatchAsync(client, operation.Id, json);
    }

    private static async Task<int> WatchAsync(SandstormClient client, string id, bool json)
    {
        BatchInfo batch;
        if (json || Console.IsOutputRedirected)
        {
            batch = (await client.GetBatchAsync(id)).Value;
            while (!batch.IsDone)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500));
                batch = (await client.GetBatchAsync(id)).Value;
            }
        }
        else
        {
            batch = await AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .StartAsync(async context =>
                {
                    var task = context.AddTask($"batch {Markup.Escape(id)}");
                    for (;;)
                    {
                        var current = (await client.GetBatchAsync(id)).Value;
                        task.MaxValue = Math.Max(1, current.Total);
                        task.Value = current.Succeeded + current.Failed + current.Cancelled;
                        task.Description = $"{current.Succeeded} ok, {current.Failed} failed, {current.Cancelled} cancelled of {current.Total}, ${current.Cost.ToString("0.######", CultureInfo.InvariantCulture)}";
                        if (current.IsDone)
                        {
                            return current;
                        }

                        await Task.Delay(TimeSpan.FromMilliseconds(500));
                    }
                });
        }

        Console.WriteLine(json
            ? JsonSerializer.Serialize(new { id = batch.Id, status = batch.Status, total = batch.Total, succeeded = batch.Succeeded, failed = batch.Failed, cancelled = batch.Cancelled, cost = batch.Cost })
            : $"{batch.Id} {batch.Status}: {batch.Succeeded} succeeded, {batch.Failed} failed, {batch.Cancelled} cancelled of {batch.Total}, cost ${batch.Cost.ToString("0.######", CultureInfo.InvariantCulture)}");
        return batch.Succeeded == batch.Total ? 0 : 1;
    }
}
