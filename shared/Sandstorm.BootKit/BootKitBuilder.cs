using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace Sandstorm.BootKit;

/// <summary>Options of one build.</summary>
public sealed record BootKitBuildOptions
{
    /// <summary>The output folder: must not exist, or be empty. It appears only when the build succeeds.</summary>
    public required string OutputFolder { get; init; }

    /// <summary>The image's name as agents report it (e.g. <c>registry.example/my-ai-os:v1.0</c>).</summary>
    public required string ImageName { get; init; }

    public string BootcBase { get; init; } = BootcContainerfile.DefaultBase;

    /// <summary>The self-contained <c>sandstorm-edge</c> binary to install; required for the disk image.</summary>
    public string? AgentBinary { get; init; }

    /// <summary>Build the disk image and netboot bundle (needs root, mmdebstrap, squashfs-tools, qemu-utils, e2fsprogs).</summary>
    public bool Image { get; init; } = true;

    /// <summary>The Debian/Ubuntu mirror for mmdebstrap (null: mmdebstrap's default for the suite).</summary>
    public string? Mirror { get; init; }
}

/// <summary>
/// <c>sandstorm bootkit build</c>: from a parsed Dockerfile, the bootc Containerfile with its context, the agent's
/// systemd units and, when asked, a bootable disk image (raw ext4 root + qcow2) and netboot bundle (kernel, initramfs,
/// squashfs root). Everything is made in a staging folder next to the output and moved into place only when all of it
/// succeeded: a failed build leaves nothing behind.
/// </summary>
public static class BootKitBuilder
{
    /// <summary>Tools the disk image needs, with the Debian package that has each.</summary>
    public static readonly IReadOnlyList<(string Tool, string Package)> ImageTools =
    [
        ("mmdebstrap", "mmdebstrap"), ("mksquashfs", "squashfs-tools"), ("qemu-img", "qemu-utils"), ("mkfs.ext4", "e2fsprogs"), ("unshare", "util-linux"),
    ];

    /// <summary>Why the disk image cannot be built on this machine; null when it can.</summary>
    public static string? ImageUnavailable(string? agentBinary)
    {
        var missing = ImageTools.Where(t => !Processes.Exists(t.Tool)).ToList();
        if (missing.Count > 0)
        {
            return $"the disk image needs {string.Join(", ", missing.Select(m => m.Tool))} (Debian: apt-get install {string.Join(' ', missing.Select(m => m.Package).Distinct())})";
        }

        if (!Environment.IsPrivilegedProcess)
        {
            return "the disk image is built as root (chroot for the RUN steps, file ownership in the root file system)";
        }

        if (agentBinary is null)
        {
            return "the disk image needs --agent PATH: the self-contained sandstorm-edge binary (dotnet publish edge/Sandstorm.Edge -r linux-x64 --self-contained -p:PublishSingleFile=true)";
        }

        return File.Exists(agentBinary) ? null : $"--agent {agentBinary}: no such file";
    }

    public static async Task<BuildReport> BuildAsync(BuildPlan plan, BootKitBuildOptions options, TextWriter progress, CancellationToken ct)
    {
        var started = Stopwatch.StartNew();
        var output = Path.GetFullPath(options.OutputFolder).TrimEnd('/');
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any())
        {
            throw new BootKitBuildException($"--out {options.OutputFolder} exists and is not empty: choose a new folder");
        }

        if (File.Exists(output))
        {
            throw new BootKitBuildException($"--out {options.OutputFolder} is a file");
        }

        if (options.Image && ImageUnavailable(options.AgentBinary) is { } why)
        {
            throw new BootKitBuildException(why + "; or pass --no-image for the Containerfile and units only");
        }

        var parent = Path.GetDirectoryName(output)!;
        Directory.CreateDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(output)}.partial-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
        Directory.CreateDirectory(staging);
        try
        {
            var warnings = new List<string>();
            await File.WriteAllTextAsync(Path.Combine(staging, "plan.json"), JsonSerializer.Serialize(PlanJson(plan), JsonOptions), ct);

            // (a) The bootc Containerfile and its context.
            var (containerfile, bootcWarnings) = BootcContainerfile.Render(plan, options.ImageName, options.BootcBase);
            warnings.AddRange(bootcWarnings);
            await File.WriteAllTextAsync(Path.Combine(staging, "Containerfile"), containerfile, ct);
            CopySources(plan, Path.Combine(staging, BootcContainerfile.SourcesFolder));

            // (b) The agent's units and scripts (bootc flavour under sandstorm/rootfs; the disk image gets its own).
            var agentFolder = Path.Combine(staging, BootcContainerfile.AgentFolder);
            WriteTree(Path.Combine(agentFolder, "rootfs"), AgentUnits.Files(plan, bootc: true));
            if (options.AgentBinary is { } agent)
            {
                File.Copy(agent, Path.Combine(agentFolder, "sandstorm-edge"));
            }
            else
            {
                warnings.Add($"no --agent given: put the self-contained sandstorm-edge binary at {BootcContainerfile.AgentFolder}/sandstorm-edge before building the Containerfile");
            }

            string? digest = null;
            long? rootSize = null;
            IReadOnlyList<string> packages = [];
            string? skipped = null;
            if (options.Image)
            {
                await using var log = new StreamWriter(Path.Combine(staging, "build.log"));
                var image = await ImageBuilder.BuildAsync(plan, options, staging, new Processes(log), progress, ct);
                (digest, rootSize, packages) = (image.Digest, image.RootBytes, image.Packages);
            }
            else
            {
                skipped = "--no-image";
            }

            var artifacts = Directory.EnumerateFiles(staging, "*", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(staging, f))
                .Where(f => f != "report.json")
                .Order(StringComparer.Ordinal)
                .Select(f => Artifact(staging, f))
                .ToList();
            var report = new BuildReport
            {
                Name = options.ImageName,
                Digest = digest,
                Base = plan.Base.Image,
                Suite = $"{plan.Base.Distribution}/{plan.Base.Suite}",
                BootcBase = options.BootcBase,
                Artifacts = artifacts,
                Packages = packages,
                RootSizeBytes = rootSize,
                BuildSeconds = Math.Round(started.Elapsed.TotalSeconds, 1),
                ImageSkipped = skipped,
                Warnings = warnings,
            };
            await File.WriteAllTextAsync(Path.Combine(staging, "report.json"), JsonSerializer.Serialize(report, JsonOptions), ct);

            if (Directory.Exists(output))
            {
                Directory.Delete(output);
            }

            Directory.Move(staging, output);
            return report;
        }
        catch
        {
            // Nothing half-built is left: the staging folder goes, mounts were private to the build's own namespace.
            try
            {
                Directory.Delete(staging, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }

            throw;
        }
    }

    internal static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private static object PlanJson(BuildPlan plan) => new
    {
        @base = plan.Base,
        steps = plan.Steps.Select(s => (object)s).ToList(),
        environment = plan.Environment,
        workingDirectory = plan.WorkingDirectory,
        user = plan.User,
        ports = plan.Ports,
        service = plan.Service,
    };

    /// <summary>The COPY sources, at the same relative paths under <paramref name="target"/> (symlinks kept as symlinks).</summary>
    internal static void CopySources(BuildPlan plan, string target)
    {
        Directory.CreateDirectory(target);
        foreach (var source in plan.Steps.OfType<CopyStep>().SelectMany(c => c.Sources).Distinct(StringComparer.Ordinal))
        {
            CopyEntry(Path.Combine(plan.Context, source), source == "." ? target : Path.Combine(target, source));
        }
    }

    private static void CopyEntry(string from, string to)
    {
        var info = new FileInfo(from);
        if (info.LinkTarget is { } link)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            if (!Path.Exists(to))
            {
                File.CreateSymbolicLink(to, link);
            }
        }
        else if (Directory.Exists(from))
        {
            Directory.CreateDirectory(to);
            foreach (var entry in Directory.EnumerateFileSystemEntries(from))
            {
                CopyEntry(entry, Path.Combine(to, Path.GetFileName(entry)));
            }
        }
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(from, to, overwrite: true);
            File.SetUnixFileMode(to, File.GetUnixFileMode(from));
        }
    }

    internal static void WriteTree(string root, IReadOnlyDictionary<string, string> files)
    {
        foreach (var (relative, text) in files)
        {
            var path = Path.Combine(root, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, text);
            var executable = relative.StartsWith(AgentUnits.LibDir.TrimStart('/'), StringComparison.Ordinal) && !relative.EndsWith(".json", StringComparison.Ordinal);
            File.SetUnixFileMode(path, executable
                ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute
                : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
    }

    private static BuildArtifact Artifact(string root, string relative)
    {
        var path = Path.Combine(root, relative);
        if (new FileInfo(path).LinkTarget is not null)
        {
            return new BuildArtifact(relative, 0, "");
        }

        using var stream = File.OpenRead(path);
        return new BuildArtifact(relative, stream.Length, Convert.ToHexStringLower(SHA256.HashData(stream)));
    }
}
