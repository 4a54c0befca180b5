using System.Diagnostics;
using System.Text.Json;

namespace Sandstorm.BootKit.Tests;

public sealed class BootKitBuilderTests : IDisposable
{
    private const string Dockerfile = """
        FROM debian:12
        RUN apt-get update && apt-get install -y --no-install-recommends python3 \
         && useradd --system --home /srv/app app
        ENV GREETING="hello & welcome"
        WORKDIR /srv/app
        COPY app/ ./
        COPY config.toml /etc/app/
        USER app
        EXPOSE 8000
        CMD ["python3", "-m", "http.server", "8000"]
        """;

    private readonly BuildContext _ctx = new();

    public BootKitBuilderTests()
    {
        _ctx.File("app/main.py", "print('hi')\n").File("config.toml", "port = 8000\n").File("agent/sandstorm-edge", "#!/bin/sh\n");
    }

    public void Dispose() => _ctx.Dispose();

    private string Out => Path.Combine(_ctx.Root, "out");

    private Task<BuildReport> BuildAsync(bool image = false, string? agent = null, string? mirror = null) =>
        BootKitBuilder.BuildAsync(
            _ctx.Parse(Dockerfile),
            new BootKitBuildOptions { OutputFolder = Out, ImageName = "registry.example/my-ai-os:v1.0", AgentBinary = agent, Image = image, Mirror = mirror },
            TextWriter.Null,
            CancellationToken.None);

    [Fact]
    public async Task BuildAsync_NoImage_WritesContainerfileContextUnitsAndReport()
    {
        var report = await BuildAsync(agent: Path.Combine(_ctx.Context, "agent/sandstorm-edge"));

        Assert.Equal("print('hi')\n", File.ReadAllText(Path.Combine(Out, "files/app/main.py")));
        Assert.True(File.Exists(Path.Combine(Out, "files/config.toml")));
        Assert.True(File.Exists(Path.Combine(Out, "sandstorm/sandstorm-edge")));
        Assert.True(File.Exists(Path.Combine(Out, "sandstorm/rootfs/usr/lib/systemd/system/sandstorm-edge.service")));
        var saved = JsonSerializer.Deserialize<BuildReport>(File.ReadAllText(Path.Combine(Out, "report.json")), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
        Assert.Equal(("registry.example/my-ai-os:v1.0", "debian/bookworm", null, "--no-image"), (saved.Name, saved.Suite, saved.Digest, saved.ImageSkipped));
        Assert.Contains(saved.Artifacts, a => a.Path == "Containerfile" && a.Bytes > 0 && a.Sha256.Length == 64);
        Assert.Equal(report.Artifacts.Count, saved.Artifacts.Count);
        // The RUN step calls apt-get, which the default (CentOS) bootc base lacks: said, not hidden.
        Assert.Contains(saved.Warnings, w => w.Contains("line(s) 2", StringComparison.Ordinal));
        Assert.Empty(Directory.GetDirectories(_ctx.Root, ".out.partial-*"));
    }

    [Fact]
    public async Task BuildAsync_OutputNotEmpty_RefusedAndLeftAlone()
    {
        Directory.CreateDirectory(Out);
        File.WriteAllText(Path.Combine(Out, "mine.txt"), "keep");

        var e = await Assert.ThrowsAsync<BootKitBuildException>(() => BuildAsync());

        Assert.Contains("not empty", e.Message, StringComparison.Ordinal);
        Assert.Equal(["mine.txt"], Directory.GetFiles(Out).Select(Path.GetFileName));
    }

    [Fact]
    public async Task BuildAsync_ImageThatCannotBeBuilt_FailsAndLeavesNothing()
    {
        // With mmdebstrap, root and an agent, the image build starts and fails on an unreachable mirror; without them it is
        // refused up front. Either way the output folder never appears and no staging folder stays.
        var agent = Path.Combine(_ctx.Context, "agent/sandstorm-edge");
        var e = await Assert.ThrowsAsync<BootKitBuildException>(() => BuildAsync(image: true, agent: agent, mirror: "file:///nonexistent-bootkit-mirror"));

        Assert.False(string.IsNullOrWhiteSpace(e.Message));
        Assert.False(Directory.Exists(Out));
        Assert.Empty(Directory.GetFileSystemEntries(_ctx.Root, ".out*"));
    }

    [Fact]
    public async Task BuildAsync_ImageWithoutAgent_RefusedNamingTheOption()
    {
        var e = await Assert.ThrowsAsync<BootKitBuildException>(() => BuildAsync(image: true));

        Assert.Contains("--no-image", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Out));
    }

    [Fact]
    public async Task Containerfile_Lint_IsAWellFormedBootcContainerfile()
    {
        await BuildAsync(agent: Path.Combine(_ctx.Context, "agent/sandstorm-edge"));
        var instructions = File.ReadAllLines(Path.Combine(Out, "Containerfile"))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => (Keyword: l.Split(' ', 2)[0], Args: l.Split(' ', 2)[1]))
            .ToList();

        // Instructions a bootc build understands, one FROM first, ending with bootc's own lint.
        Assert.All(instructions, i => Assert.Contains(i.Keyword, (string[])["FROM", "RUN", "COPY", "ENV", "WORKDIR", "USER", "EXPOSE", "LABEL"]));
        Assert.Equal(("FROM", BootcContainerfile.DefaultBase), instructions[0]);
        Assert.Single(instructions, i => i.Keyword == "FROM");
        Assert.Contains(("LABEL", "containers.bootc=1"), instructions);
        Assert.Equal(("RUN", "bootc container lint"), instructions[^1]);

        // Exec forms are JSON arrays; every COPY source is in the context the file is built from.
        foreach (var (keyword, args) in instructions.Where(i => i.Keyword is "RUN" or "COPY"))
        {
            var words = args.StartsWith('[') ? JsonSerializer.Deserialize<string[]>(args)! : args.Split(' ').Where(w => !w.StartsWith("--", StringComparison.Ordinal)).ToArray();
            if (keyword == "COPY")
            {
                Assert.All(words[..^1], s => Assert.True(Path.Exists(Path.Combine(Out, s)), $"COPY source {s} missing from the context"));
                Assert.StartsWith("/", words[^1], StringComparison.Ordinal);
            }
        }

        Assert.Contains(("RUN", """["/bin/sh","-c","apt-get update && apt-get install -y --no-install-recommends python3   && useradd --system --home /srv/app app"]"""), instructions);
        Assert.Contains(("ENV", "GREETING=\"hello & welcome\""), instructions);

        // The units it enables are the ones it copies in.
        var enable = instructions.Single(i => i.Args.Contains("systemctl enable", StringComparison.Ordinal)).Args;
        foreach (var unit in enable[(enable.IndexOf("systemctl enable ", StringComparison.Ordinal) + 17)..].Split(' '))
        {
            Assert.True(File.Exists(Path.Combine(Out, "sandstorm/rootfs/usr/lib/systemd/system", unit)), unit);
        }
    }

    [Fact]
    public async Task Units_SystemdAnalyzeVerify_AcceptsThem()
    {
        await BuildAsync();
        var units = Path.Combine(Out, "sandstorm/rootfs/usr/lib/systemd/system");
        var psi = new ProcessStartInfo("systemd-analyze") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in (string[])["verify", "--man=no", .. Directory.GetFiles(units).Order(StringComparer.Ordinal)])
        {
            psi.ArgumentList.Add(arg);
        }

        using var process = Process.Start(psi)!;
        var stderr = await process.StandardError.ReadToEndAsync(CancellationToken.None);
        await process.WaitForExitAsync(CancellationToken.None);

        // The image's own executables are not on this machine; any other complaint (unknown key, bad value) is a fault.
        string[] inImage = [AgentUnits.AgentBinary, AgentUnits.EnrollScript, AgentUnits.DigestScript];
        var problems = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !inImage.Any(p => l.Contains($"Command {p} is not executable", StringComparison.Ordinal)))
            .ToList();
        Assert.Empty(problems);
    }

    [Fact]
    public void AgentUnits_EnrolFromBootMaterial_Unprivileged_NoSecretInImage()
    {
        var files = AgentUnits.Files(_ctx.Parse(Dockerfile), bootc: false);

        var agent = files["usr/lib/systemd/system/sandstorm-edge.service"];
        var enroll = files["usr/lib/systemd/system/sandstorm-edge-enroll.service"];
        Assert.Contains("User=sandstorm-edge", agent, StringComparison.Ordinal);
        Assert.Contains("User=sandstorm-edge", enroll, StringComparison.Ordinal);
        Assert.DoesNotContain("ExecStartPre=+", agent, StringComparison.Ordinal);
        Assert.Contains($"LoadCredential={AgentUnits.TokenCredential}", enroll, StringComparison.Ordinal);
        Assert.Contains($"ConditionPathExists=!{AgentUnits.ConfigPath}", enroll, StringComparison.Ordinal);
        // The token never travels on a command line (the script hands the agent the credential's file).
        var script = files[AgentUnits.EnrollScript.TrimStart('/')];
        Assert.Contains("--enrollment-token-file \"$token_file\"", script, StringComparison.Ordinal);
        Assert.DoesNotContain("sandstorm.enrollment_token=", script, StringComparison.Ordinal);
        Assert.Contains("u sandstorm-edge ", files["usr/lib/sysusers.d/sandstorm-edge.conf"], StringComparison.Ordinal);
        var app = files["usr/lib/systemd/system/bootkit-app.service"];
        Assert.Contains("User=app\n", app, StringComparison.Ordinal);
        Assert.Contains("WorkingDirectory=/srv/app\n", app, StringComparison.Ordinal);
        Assert.Contains("ExecStart=\"python3\" \"-m\" \"http.server\" \"8000\"\n", app, StringComparison.Ordinal);
        Assert.Contains("Environment=\"GREETING=hello & welcome\"\n", app, StringComparison.Ordinal);
    }

    [Fact]
    public void AgentUnits_Bootc_ReadsTheBootedImageAsRoot()
    {
        var files = AgentUnits.Files(_ctx.Parse(Dockerfile), bootc: true);

        Assert.Contains($"ExecStartPre=+{AgentUnits.DigestScript}", files["usr/lib/systemd/system/sandstorm-edge.service"], StringComparison.Ordinal);
        Assert.Contains("bootc status --booted --format=json", files[AgentUnits.DigestScript.TrimStart('/')], StringComparison.Ordinal);
    }
}
