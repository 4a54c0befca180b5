using System.Text.RegularExpressions;
using Sandstorm.Testing;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// The agent's OCI image definition (packaging/oci/Containerfile) cannot be built here (no registry for its base images),
/// so this checks what can go stale: the project it publishes, the binary name that publish writes, the stages it copies
/// from, the packages it installs against the runtimes the agent drives, and that it runs unprivileged.
/// </summary>
public sealed partial class ContainerfileTests
{
    private static readonly string Root = NodeScript.RepositoryRoot();

    private static string[] Instructions()
    {
        var text = File.ReadAllText(Path.Combine(Root, "packaging", "oci", "Containerfile")).Replace("\\\n", " ", StringComparison.Ordinal);
        return [.. text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))];
    }

    [Fact]
    public void Containerfile_PublishesTheAgentProject_AndCopiesTheBinaryPublishWrites()
    {
        var lines = Instructions();
        var publish = Assert.Single(lines, l => l.StartsWith("RUN dotnet publish ", StringComparison.Ordinal));
        var project = PublishedProject().Match(publish).Groups[1].Value;
        Assert.True(File.Exists(Path.Combine(Root, project)), project + " does not exist");
        Assert.Contains("-p:PublishSingleFile=true", publish, StringComparison.Ordinal);
        Assert.Contains("--self-contained", publish, StringComparison.Ordinal);

        // A single-file publish names the binary after the assembly (the project's file name).
        var binary = Path.GetFileNameWithoutExtension(project);
        var stages = lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).Select(l => l.Split(' ')).Where(p => p.Length == 4).Select(p => p[3]).ToList();
        var copy = Assert.Single(lines, l => l.StartsWith("COPY --from=", StringComparison.Ordinal)).Split(' ');
        Assert.Contains(copy[1]["--from=".Length..], stages);
        Assert.Equal("/out/" + binary, copy[2]);
        Assert.Equal("/usr/local/bin/sandstorm-edge", copy[3]);
    }

    [Fact]
    public void Containerfile_InstallsTheRuntimesOfSetup_AndRunsAsAnUnprivilegedUser()
    {
        var lines = Instructions();
        var install = Assert.Single(lines, l => l.Contains("apt-get install", StringComparison.Ordinal));
        foreach (var package in new[] { "bubblewrap", "runc", "runsc", "podman", "uidmap", "slirp4netns", "fuse-overlayfs", "python3" })
        {
            Assert.Matches(@"\s" + Regex.Escape(package) + @"\s", install);
        }

        var user = lines.Last(l => l.StartsWith("USER ", StringComparison.Ordinal))["USER ".Length..];
        Assert.NotEqual("root", user);
        Assert.NotEqual("0", user);
        Assert.DoesNotContain(lines, l => l.Contains("enrollment-token ", StringComparison.Ordinal) || l.StartsWith("ENV SANDSTORM", StringComparison.Ordinal));
    }

    [GeneratedRegex(@"dotnet publish (\S+\.csproj)")]
    private static partial Regex PublishedProject();
}
