using Azure;

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
            var response = await ControlPlane.CreateSandstormClient(flags).GetRunAsync(id);
            RunCommand.Print(response.Value, flags.ContainsKey("json"), response.GetRawResponse().Content.ToString());
            return 0;
        }
        catch (RequestFailedException e)
        {
            return SandboxCommand.Failed(e, args.Contains("--json"));
        }
        catch (Exception e) when (e is ArgumentException or HttpRequestException)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }
}
