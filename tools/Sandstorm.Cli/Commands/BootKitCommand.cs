using System.Text.Json;
using Sandstorm.BootKit;

namespace Sandstorm.Cli.Commands;

/// <summary>
/// <c>sandstorm bootkit build DOCKERFILE --out DIR [...]</c>: turns a Dockerfile into a bootable image that runs the
/// Sandstorm edge agent — the bootc Containerfile, the agent's systemd units and (as root, with mmdebstrap) a raw + qcow2
/// disk and a netboot bundle, with a build report. Exit 0 built, 1 refused or failed (nothing left in DIR), 2 bad usage.
/// </summary>
public static class BootKitCommand
{
    private const string Usage = """
        usage: sandstorm bootkit build DOCKERFILE --out DIR [--name IMAGE] [--context DIR] [--agent SANDSTORM_EDGE_BINARY]
                                       [--bootc-base IMAGE] [--mirror URL] [--no-image] [--json]
          --out         new (or empty) folder; it appears only when the whole build succeeded
          --name        the image's name as agents report it (default: localhost/<context folder>:latest)
          --context     folder COPY/ADD sources are relative to (default: the Dockerfile's folder)
          --agent       the self-contained sandstorm-edge binary to install (needed for the disk image)
          --bootc-base  base of the bootc Containerfile (default: quay.io/centos-bootc/centos-bootc:stream10)
          --mirror      Debian/Ubuntu mirror for mmdebstrap (default: mmdebstrap's)
          --no-image    only the Containerfile, its context and the units (no root, no downloads)
        """;

    /// <summary>Runs the command with the arguments after <c>bootkit</c>.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        if (args is not ["build", .. var rest])
        {
            return UsageError(args is ["-h" or "--help"] ? null : "expected: bootkit build");
        }

        string? dockerfile = null, output = null, name = null, context = null, agent = null, mirror = null;
        var bootcBase = BootcContainerfile.DefaultBase;
        bool image = true, json = false;
        for (var i = 0; i < rest.Length; i++)
        {
            var arg = rest[i];
            switch (arg)
            {
                case "-h" or "--help":
                    Console.WriteLine(Usage);
                    return 0;
                case "--no-image":
                    image = false;
                    continue;
                case "--json":
                    json = true;
                    continue;
            }

            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                if (i + 1 >= rest.Length)
                {
                    return UsageError($"{arg} needs a value");
                }

                var value = rest[++i];
                switch (arg)
                {
                    case "--out": output = value; break;
                    case "--name": name = value; break;
                    case "--context": context = value; break;
                    case "--agent": agent = value; break;
                    case "--bootc-base": bootcBase = value; break;
                    case "--mirror": mirror = value; break;
                    default: return UsageError($"unknown option {arg}");
                }
            }
            else if (dockerfile is null)
            {
                dockerfile = arg;
            }
            else
            {
                return UsageError($"unexpected argument {arg}");
            }
        }

        if (dockerfile is null || output is null)
        {
            return UsageError("DOCKERFILE and --out DIR are required");
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        try
        {
            var plan = DockerfileParser.ParseFile(dockerfile, context);
            name ??= $"localhost/{DefaultName(plan.Context)}:latest";
            var report = await BootKitBuilder.BuildAsync(
                plan,
                new BootKitBuildOptions { OutputFolder = output, ImageName = name, BootcBase = bootcBase, AgentBinary = agent, Image = image, Mirror = mirror },
                json ? TextWriter.Null : Console.Error,
                cancel.Token);
            if (json)
            {
                Console.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true }));
            }
            else
            {
                Console.WriteLine($"built {report.Name} from {report.Base} ({report.Suite}) in {report.BuildSeconds} s → {output}");
                Console.WriteLine(report.Digest is null ? $"  disk image: not built ({report.ImageSkipped})" : $"  digest {report.Digest}, root {report.RootSizeBytes / (1024 * 1024)} MiB, {report.Packages.Count} packages");
                foreach (var artifact in report.Artifacts.Where(a => !a.Path.Contains('/', StringComparison.Ordinal) || a.Path.StartsWith("netboot/", StringComparison.Ordinal)))
                {
                    Console.WriteLine($"  {artifact.Path,-28} {artifact.Bytes,12:N0} B");
                }

                foreach (var warning in report.Warnings)
                {
                    Console.Error.WriteLine("warning: " + warning);
                }
            }

            return 0;
        }
        catch (DockerfileException e)
        {
            Console.Error.WriteLine($"{dockerfile}: {e.Message}");
            return 1;
        }
        catch (BootKitBuildException e)
        {
            Console.Error.WriteLine("bootkit build failed: " + e.Message);
            return 1;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("bootkit build cancelled; nothing was left in " + output);
            return 1;
        }
    }

    private static string DefaultName(string context)
    {
        var folder = Path.GetFileName(context.TrimEnd('/')).ToLowerInvariant();
        var clean = new string([.. folder.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '-')]).Trim('-', '.');
        return clean.Length > 0 ? clean : "bootkit";
    }

    private static int UsageError(string? message)
    {
        if (message is not null)
        {
            Console.Error.WriteLine(message);
        }

        Console.Error.WriteLine(Usage);
        return 2;
    }
}
