using Sandstorm.Core.Contracts;
using Sandstorm.Edge.Agent;

namespace Sandstorm.Edge.Commands;

/// <summary><c>sandstorm-edge init</c>: enrols this machine with a control plane and saves the agent credential.</summary>
public sealed class InitCommand : IEdgeCommand
{
    public string Name => "init";

    public string Summary => "enrol this machine as an edge agent (saves its credential to the config file)";

    public string Usage => """
        usage: sandstorm-edge init --control-plane URL --enrollment-token TOKEN [--name NAME] [--region R]
                                   [--label k=v]... [--vpc-mode] [--config PATH] [--force]
          --control-plane     base URL of the Sandstorm control plane (the agent only ever connects out to it)
          --enrollment-token  token from POST /v1/edge/enrollment-tokens (or $SANDSTORM_EDGE_ENROLLMENT_TOKEN)
          --name              agent name (default: this machine's host name)
          --region            region the agent serves (default: the token's, else "default")
          --label             k=v label, repeatable
          --vpc-mode          the control plane is reachable only at times: results wait on disk until it is
          --config            where to save (default: $SANDSTORM_EDGE_CONFIG, else ~/.sandstorm-edge/agent.json); mode 0600
          --force             replace an existing config (the old agent stays enrolled until it is removed)
        """;

    public async Task<int> RunAsync(IReadOnlyList<string> args, EdgeContext context, CancellationToken ct)
    {
        var parsed = ParsedArguments.Parse(args, ["control-plane", "enrollment-token", "name", "region", "config"], ["vpc-mode", "force"], ["label"]);
        var controlPlane = parsed.Required("control-plane");
        if (!Uri.TryCreate(controlPlane, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new UsageException($"--control-plane must be an http(s) URL (got '{controlPlane}')");
        }

        var token = parsed.Value("enrollment-token")
            ?? (Environment.GetEnvironmentVariable("SANDSTORM_EDGE_ENROLLMENT_TOKEN") is { Length: > 0 } env ? env : null)
            ?? throw new UsageException("--enrollment-token is required");
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
        await config.SaveAsync(path, ct);
        await context.Out.WriteLineAsync($"enrolled agent {enrolled.AgentId} for tenant {enrolled.TenantId}; credential saved to {path}");
        await context.Out.WriteLineAsync($"start it with: sandstorm-edge start --config {path}");
        return 0;
    }
}
