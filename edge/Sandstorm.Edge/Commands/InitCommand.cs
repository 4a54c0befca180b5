using Sandstorm.Core.Contracts;
using Sandstorm.Edge.Agent;

namespace Sandstorm.Edge.Commands;

/// <summary><c>sandstorm-edge init</c>: enrols this machine with a control plane and saves the agent credential.</summary>
public sealed class InitCommand : IEdgeCommand
{
    public string Name => "init";

    public string Summary => "enrol this machine as an edge agent (saves its credential to the config file)";

    public string Usage => """
        usage: sandstorm-edge init --control-plane URL [--enrollment-token-file PATH|-] [--name NAME] [--region R]
                                   [--label k=v]... [--vpc-mode] [--config PATH] [--force]
          --control-plane          base URL of the Sandstorm control plane (the agent only ever connects out to it);
                                   https://, or http:// only for this machine (127.0.0.1, [::1], localhost)
          --enrollment-token-file  file holding the token from POST /v1/edge/enrollment-tokens, or - for stdin;
                                   without it, $SANDSTORM_EDGE_ENROLLMENT_TOKEN. Never on the command line, which
                                   every local user can read.
          --name              agent name (default: this machine's host name)
          --region            region the agent serves (default: the token's, else "default")
          --label             k=v label, repeatable
          --vpc-mode          the control plane is reachable only at times: results wait on disk until it is
          --config            where to save (default: $SANDSTORM_EDGE_CONFIG, else ~/.sandstorm-edge/agent.json); mode 0600
          --force             replace an existing config (the old agent stays enrolled until it is removed)
        """;

    public async Task<int> RunAsync(IReadOnlyList<string> args, EdgeContext context, CancellationToken ct)
    {
        if (args.Any(a => a == "--enrollment-token" || a.StartsWith("--enrollment-token=", StringComparison.Ordinal)))
        {
            throw new UsageException(
                "--enrollment-token is not accepted: every local user can read a command line (ps). "
                + "Pass the token with --enrollment-token-file PATH, --enrollment-token-file - (stdin) or $SANDSTORM_EDGE_ENROLLMENT_TOKEN");
        }

        var parsed = ParsedArguments.Parse(args, ["control-plane", "enrollment-token-file", "name", "region", "config"], ["vpc-mode", "force"], ["label"]);
        var controlPlane = parsed.Required("control-plane");
        if (ControlPlaneUrl.Problem(controlPlane) is { } problem)
        {
            throw new UsageException("--control-plane: " + problem);
        }

        var token = await ReadTokenAsync(parsed.Value("enrollment-token-file"), context, ct);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var label in parsed.Values("label"))
        {
            var eq = label.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new UsageException($"--label must be k=v (got '{label}')");
            }

            labels[label[..eq]] = label[(eq + 1)..];
        }

        var path = AgentConfig.ResolvePath(parsed.Value("config"));
        if (File.Exists(path) && !parsed.Has("force"))
        {
            await context.Error.WriteLineAsync($"sandstorm-edge init: {path} already exists (this machine is enrolled); pass --force to enrol again");
            return 1;
        }

        var request = new EdgeEnrollRequest
        {
            Name = parsed.Value("name") ?? Environment.MachineName,
            Region = parsed.Value("region"),
            VpcMode = parsed.Has("vpc-mode"),
            Labels = labels,
        };
        EdgeEnrollResponse enrolled;
        try
        {
            enrolled = await ControlPlaneClient.EnrollAsync(controlPlane, token, request, context.HttpHandler, ct);
        }
        catch (ControlPlaneException e)
        {
            await context.Error.WriteLineAsync($"sandstorm-edge init: enrolment failed: {e.Message}");
            return 1;
        }

        var config = new AgentConfig
        {
            ControlPlane = controlPlane.TrimEnd('/'),
            AgentId = enrolled.AgentId,
            AgentToken = enrolled.AgentToken,
            TenantId = enrolled.TenantId,
            Name = request.Name,
            Region = request.Region,
            VpcMode = request.VpcMode,
            Labels = labels,
        };
        try
        {
            await config.SaveAsync(path, ct);
        }
        catch (InvalidOperationException e)
        {
            await context.Error.WriteLineAsync($"sandstorm-edge init: enrolled agent {enrolled.AgentId}, but could not save its credential: {e.Message}");
            return 1;
        }

        await context.Out.WriteLineAsync($"enrolled agent {enrolled.AgentId} for tenant {enrolled.TenantId}; credential saved to {path}");
        await context.Out.WriteLineAsync($"start it with: sandstorm-edge start --config {path}");
        return 0;
    }

    // The token from a file, stdin ("-") or the environment; first line, trimmed.
    private static async Task<string> ReadTokenAsync(string? file, EdgeContext context, CancellationToken ct)
    {
        string? text;
        if (file == "-")
        {
            text = await context.Input.ReadLineAsync(ct);
        }
        else if (file is not null)
        {
            try
            {
                text = (await File.ReadAllLinesAsync(file, ct)).FirstOrDefault();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"cannot read --enrollment-token-file '{file}': {e.Message}");
            }
        }
        else
        {
            text = Environment.GetEnvironmentVariable("SANDSTORM_EDGE_ENROLLMENT_TOKEN");
        }

        return text?.Trim() is { Length: > 0 } token
            ? token
            : throw new UsageException("an enrollment token is required: --enrollment-token-file PATH, --enrollment-token-file - (stdin) or $SANDSTORM_EDGE_ENROLLMENT_TOKEN");
    }
}
