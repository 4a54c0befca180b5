using System.Globalization;
using Sandstorm.Routing.Simulation;

namespace Sandstorm.Cli.Commands;

/// <summary>
/// <c>sandstorm bench routing [--trace FILE | --generate FILE [--requests N] [--seed S]] [--json]</c>:
/// replays a market trace against the ML router and the baselines and prints the figures.
/// </summary>
public static class BenchRoutingCommand
{
    private const string Usage = "usage: sandstorm bench routing [--trace FILE | --generate FILE [--requests N] [--seed S]] [--json]";

    /// <summary>Runs the command with the arguments after <c>bench routing</c>; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        string? trace = null, generate = null;
        int? requests = null, seed = null;
        var json = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--trace" when i + 1 < args.Length: trace = args[++i]; break;
                case "--generate" when i + 1 < args.Length: generate = args[++i]; break;
                case "--requests" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var n) && n > 0: requests = n; i++; break;
                case "--seed" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var s): seed = s; i++; break;
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
                var settings = new MarketSettings();
                settings = settings with { Requests = requests ?? settings.Requests, Seed = seed ?? settings.Seed };
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

        var result = await RoutingBenchmark.RunAsync(market, new BenchmarkSettings(), cts.Token);
        Console.WriteLine(json ? RoutingBenchmark.ToJson(result) : RoutingBenchmark.Format(result));
        return 0;
    }
}
