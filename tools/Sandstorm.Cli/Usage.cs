namespace Sandstorm.Cli;

/// <summary>The CLI's help text.</summary>
public static class Usage
{
    public const string Text = """
        sandstorm — run code safely through a Sandstorm control plane

          sandstorm run (--code TEXT | --file PATH) --language python|javascript|bash
                        [--isolation none|standard|strong|maximum] [--timeout MS] [--memory MIB] [--cpu N]
                        [--strategy optimize_cost|optimize_latency|balanced|optimize_carbon] [--wait SECONDS] [--json]
          sandstorm status RUN_ID [--json]
          sandstorm batch submit FILE [--watch] [--json]    (FILE: a JSON array or JSON Lines of run requests)
          sandstorm batch watch ID [--json]                 (a progress bar with counts, cost and ETA on a terminal)
          sandstorm sandbox create [--isolation LEVEL] [--timeout SECONDS] [--metadata k=v,...] [--json]
          sandstorm sandbox exec ID [--cwd DIR] [--timeout MS] [--json] -- CMD...   (output as it comes; exit code is the command's)
          sandstorm sandbox ls [--all] [--json]
          sandstorm sandbox kill ID [--json]
          sandstorm verify BUNDLE [--key PUBLIC_KEY] [--control-plane URL] [--stdout FILE] [--stderr FILE] [--code FILE]
          sandstorm verify --pin (--key PUBLIC_KEY | --control-plane URL)   (trust this key from now on; see docs/provenance.md)
          sandstorm bootkit build DOCKERFILE --out DIR [--name IMAGE] [--agent SANDSTORM_EDGE_BINARY] [--no-image] [--json]
                        (a bootable image running the edge agent: bootc Containerfile, systemd units, raw/qcow2 disk, netboot bundle)
          sandstorm bench pipeline [--runs N] [--concurrency N] [--engines in-memory,azurite]
          sandstorm bench routing [--trace FILE | --generate FILE] [--requests N] [--seed S] [--shape-seed K] [--no-adaptation] [--json]
          sandstorm bench telemetry [--events N] [--storage CONNECTION_STRING]
          sandstorm bench log [--appends N] [--storage CONNECTION_STRING]
          sandstorm bench sandboxes [--creates N] [--commands N] [--stream-mib N] [--idle N]
          sandstorm bench batch [--runs 1000] [--concurrency 16] [--engine azurite|in-memory]

        Control plane: --control-plane URL, else $SANDSTORM_URL or $SANDSTORM_BASE_URL, else http://127.0.0.1:7071 (https, or http to loopback only).
        API key: --api-key KEY, else $SANDSTORM_API_KEY, else .sandstorm/dev-api-key (written by the local host).
        Exit codes: 0 success (exec: the command's own code), 1 refused by the API, the run failed or a batch item did not succeed, 2 bad usage.
        """;

    public static int Print(int exitCode, string? error = null)
    {
        if (error is not null)
        {
            Console.Error.WriteLine(error);
        }

        (exitCode == 0 ? Console.Out : Console.Error).WriteLine(Text);
        return exitCode;
    }
}
