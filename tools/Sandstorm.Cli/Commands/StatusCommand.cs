using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Cli.Commands;

/// <summary><c>sandstorm status RUN_ID</c>: shows a run.</summary>
public static class StatusCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            var (flags, positional) = ControlPlane.Parse(args, "json");
            var id = positional.FirstOrDefault() ?? throw new ArgumentException("usage: sandstorm status RUN_ID");
            using var http = ControlPlane.CreateClient(flags, TimeSpan.FromSeconds(30));
            using var response = await http.GetAsync($"v1/runs/{Uri.EscapeDataString(id)}");
            var body = await response.Content.ReadAsStringAsync();
            if (!response.IsSuccessStatusCode)
            {
                Console.Error.WriteLine($"{(int)response.StatusCode}: {body}");
                return 1;
            }

            RunCommand.Print(JsonSerializer.Deserialize<RunResult>(body, SandstormJson.Options)!, flags.ContainsKey("json"), body);
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or HttpRequestException)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }
}
