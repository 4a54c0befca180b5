using System.Globalization;
using Sandstorm.Routing.Simulation;

namespace Sandstorm.Cli.Commands;

/// <summary>
/// <c>sandstorm bench routing [--trace FILE | [--generate FILE] [--requests N] [--seed S] [--shape-seed K]] [--no-adaptation] [--json]</c>:
/// replays a market trace against the ML router and the references computed from the trace, then the two adaptation
/// scenarios, and prints the figures. <c>--shape-seed K</c> generates a market shape nobody tuned on (every hidden figure of
/// the default market scaled by a factor drawn from K, <see cref="MarketSettings.Randomized"/>).
/// </summary>
public static class BenchRoutingCommand
{
    private const string Usage = "usage: sandstorm bench routing [--trace FILE | [--generate FILE] [--requests N] [--seed S] [--shape-seed K]] [--no-adaptation] [--json]";

    /// <summary>Runs the command with the arguments after <c>bench routing</c>; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        string? trace = null, generate = null;
        int? requests = null, seed = null, shape = null;
        var json = false;
        var adaptation = true;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--trace" when i + 1 < args.Length: trace = args[++i]; break;
                case "--generate" when i + 1 < args.Length: generate = args[++i]; break;
                case "--requests" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var n) && n > 0: requests = n; i++; break;
                case "--seed" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var s): seed = s; i++; break;
                case "--shape-seed" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var k): shape = k; i++; break;
                case "--no-adaptation": adaptation = false; break;
                case "--json": json = true; break;
                default:
                    await Console.Error.WriteLineAsync($"unknown or incomplete argument '{args[i]}'\n{Usage}");
                    return 2;
            }
        }

        if (trace is not null && generate is not null)
        {
            await Console.Error.WriteLineAsync($"--trace and --generate are exclusive\n{Usage}");
            return 2;
        }

        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
        MarketTrace market;
        try
        {
            if (trace is not null)
            {
                using var reader = File.OpenText(trace);
                market = await TraceSerializer.ReadAsync(reader, cts.Token);
            }
            else
            {
                var defaults = new MarketSettings();
                var settings = shape is { } k
                    ? MarketSettings.Randomized(k, seed ?? defaults.Seed, requests ?? defaults.Requests)
                    : defaults with { Requests = requests ?? defaults.Requests, Seed = seed ?? defaults.Seed };
                market = MarketSimulator.Generate(settings);
                if (generate is not null)
                {
                    await using var writer = File.CreateText(generate);
                    await TraceSerializer.WriteAsync(market, writer, cts.Token);
                    await Console.Error.WriteLineAsync($"wrote {market.Events.Count + 1} lines to {generate}");
                }
            }
        }
        catch (TraceFormatException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return 1;
        }
        catch (IOException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return 1;
        }

        var result = await RoutingBenchmark.RunAsync(market, new BenchmarkSettings { Adaptation = adaptation }, cts.Token);
        Console.WriteLine(json ? RoutingBenchmark.ToJson(result) : RoutingBenchmark.Format(result));
        return 0;
    }
}
