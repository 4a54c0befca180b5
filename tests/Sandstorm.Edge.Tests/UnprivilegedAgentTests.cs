using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Edge.Commands;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// The zero-root agent: <c>sandstorm-edge</c> started as an ordinary user (no cgroups, no setuid) against the hostile
/// cases that matter most — secrets, host files, loopback, fork and memory bombs, orphans — for <c>standard</c> (bwrap
/// in an unprivileged user namespace, and rootless podman) and <c>strong</c> (runsc --rootless). Each case runs the real CLI's <c>exec</c> as
/// that user, and this (root) process then checks the host for what the sandbox left.
/// </summary>
public sealed class UnprivilegedAgentTests(UnprivilegedAgent agent) : IClassFixture<UnprivilegedAgent>
{
    public static TheoryData<string> RootlessSandboxes() => [BwrapRuntime.RuntimeName, GvisorRuntime.RuntimeName, PodmanRuntime.RuntimeName];

    [Fact]
    public async Task Check_AsOrdinaryUser_OffersStandardAndStrongAndSaysHowLimitsHold()
    {
        var (exit, stdout, stderr) = await agent.RunCliAsync(["check", "--json"]);
        Assert.True(exit == 0, stderr);
        var statuses = JsonSerializer.Deserialize<List<EdgeRuntimeStatus>>(stdout, SandstormJson.Options)!;
        var bwrap = statuses.Single(s => s.Name == BwrapRuntime.RuntimeName);
        var gvisor = statuses.Single(s => s.Name == GvisorRuntime.RuntimeName);
        Assert.True(bwrap.Works, bwrap.Reason);
        Assert.True(gvisor.Works, gvisor.Reason);
        Assert.Contains("RLIMIT_NPROC", bwrap.Limits);
        Assert.Contains("RLIMIT_DATA", bwrap.Limits);
        Assert.Contains("inside gVisor", gvisor.Limits);
        var podman = statuses.Single(s => s.Name == PodmanRuntime.RuntimeName);
        Assert.True(podman.Works, podman.Reason);
        Assert.Contains("RLIMIT_NPROC", podman.Limits);

        // Rootful-only runtimes say why, rather than claim to work.
        Assert.False(statuses.Single(s => s.Name == RuncRuntime.RuntimeName).Works);
        Assert.False(statuses.Single(s => s.Name == MicroVmRuntime.RuntimeName).Works);
        Assert.Contains("root agent", statuses.Single(s => s.Name == MicroVmRuntime.RuntimeName).Reason);
    }

    [Fact]
    public async Task ExecMaximum_Unprivileged_IsRefusedNamingTheMicroVmRuntime()
    {
        var (exit, _, stderr) = await agent.RunCliAsync(["exec", "--isolation", "maximum", "--language", "bash", "--code", "echo hi"]);
        Assert.Equal(ExecCommand.RefusedExitCode, exit);
        Assert.Contains("qemu-microvm", stderr);
        Assert.Contains("root agent", stderr);
        Assert.DoesNotContain("hi\n", stderr);
    }

    [Theory]
    [MemberData(nameof(RootlessSandboxes))]
    public async Task AgentSecrets_NeverReachTheCode(string runtime)
    {
        var result = await agent.ExecAsync(runtime, Languages.Python, $$"""
            import os
            print("env", os.environ.get("{{UnprivilegedAgent.SecretVariable}}", "absent"))
            for path in ("{{agent.SecretFile}}", "{{agent.WorkRoot}}", "/proc/1/environ"):
                try:
                    if os.path.isdir(path):
                        print("listed", path, os.listdir(path))
                    else:
                        with open(path, "rb") as f:
                            print("read", path, f.read())
                except OSError as e:
                    print("denied", path)
            """);
        Assert.Contains("env absent", result.Stdout);
        Assert.DoesNotContain(UnprivilegedAgent.SecretValue, result.Stdout);
        Assert.DoesNotContain("listed " + agent.WorkRoot, result.Stdout);
        Assert.Contains("denied " + agent.SecretFile, result.Stdout);
        agent.AssertNothingLeft(result);
    }

    [Theory]
    [MemberData(nameof(RootlessSandboxes))]
    public async Task HostFiles_CannotBeReadOrWritten(string runtime)
    {
        var marker = "sandstorm-unprivileged-escape-" + runtime;
        var result = await agent.ExecAsync(runtime, Languages.Bash, $$"""
            for f in /etc/shadow /root/.bashrc /var/lib/dpkg/status; do
              if head -c1 "$f" >/dev/null 2>&1; then echo "read $f"; else echo "denied $f"; fi
            done
            for f in /usr/{{marker}} /etc/{{marker}} /{{marker}} /var/tmp/{{marker}}; do
              if echo x > "$f" 2>/dev/null; then echo "wrote $f"; else echo "denied $f"; fi
            done
            echo x > /scratch/ok && echo "scratch ok"
            """);
        Assert.DoesNotContain("read /etc/shadow", result.Stdout);
        Assert.DoesNotContain("read /root", result.Stdout);
        Assert.DoesNotContain("wrote", result.Stdout);
        Assert.Contains("scratch ok", result.Stdout);
        foreach (var dir in new[] { "/usr", "/etc", "/", "/var/tmp" })
        {
            Assert.False(File.Exists(Path.Combine(dir, marker)), $"{dir}/{marker} appeared on the host");
        }

        agent.AssertNothingLeft(result);
    }

    [Theory]
    [MemberData(nameof(RootlessSandboxes))]
    public async Task HostLoopback_NeverArrives(string runtime)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var result = await agent.ExecAsync(runtime, Languages.Python, $$"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {{port}}), timeout=2)
                print("connected")
            except OSError as e:
                print("refused", type(e).__name__)
            """);
        Assert.Contains("refused", result.Stdout);
        Assert.False(listener.Pending(), "a connection from the sandbox reached the host listener");
        agent.AssertNothingLeft(result);
    }

    [Theory]
    [MemberData(nameof(RootlessSandboxes))]
    public async Task ForkBomb_IsBoundedByTheProcessRlimit(string runtime)
    {
        var result = await agent.ExecAsync(runtime, Languages.Python, """
            import os, time
            n = 0
            try:
                while True:
                    if os.fork() == 0:
                        time.sleep(60)
                        os._exit(0)
                    n += 1
            except OSError as e:
                print("fork refused after", n)
            """, timeoutSeconds: 30);
        Assert.False(result.TimedOut);
        Assert.Contains("fork refused after", result.Stdout);
        var forks = int.Parse(result.Stdout.Trim().Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(forks, 0, ExecutionLimits.DefaultMaxProcesses);
        agent.AssertNothingLeft(result);
    }

    [Theory]
    [MemberData(nameof(RootlessSandboxes))]
    public async Task MemoryBomb_IsRefusedAtTheLimit(string runtime)
    {
        const int limitMiB = 64;
        var result = await agent.ExecAsync(runtime, Languages.Python, """
            chunks = []
            try:
                while True:
                    chunks.append(b"x" * (1 << 20))
            except MemoryError:
                print("refused after", len(chunks))
            """, memoryMiB: limitMiB, timeoutSeconds: 30);
        Assert.False(result.TimedOut);
        Assert.Contains("refused after", result.Stdout);
        var got = int.Parse(result.Stdout.Trim().Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(got, 1, limitMiB);
        agent.AssertNothingLeft(result);
    }

    [Theory]
    [MemberData(nameof(RootlessSandboxes))]
    public async Task Orphans_AreKilledWhenTheCodeExits(string runtime)
    {
        var result = await agent.ExecAsync(runtime, Languages.Bash, """
            sleep 300 &
            nohup sleep 301 >/dev/null 2>&1 &
            setsid sleep 302 >/dev/null 2>&1 < /dev/null &
            ( ( sleep 303 >/dev/null 2>&1 & ) & )
            echo started
            """, timeoutSeconds: 20);
        Assert.Equal("started\n", result.Stdout);
        Assert.False(result.TimedOut);
        Assert.True(result.WallTimeMs < 10_000, $"main exit should end the sandbox, took {result.WallTimeMs} ms");
        agent.AssertNothingLeft(result);
    }
}

/// <summary>
/// An ordinary host account the agent runs as (made with <c>useradd</c> if missing; the tests run as root) and a private
/// temporary directory it owns, holding its home, a secret of its own and its work root.
/// </summary>
public sealed class UnprivilegedAgent : IDisposable
{
    public const string UserName = "sandstorm-edge";
    public const string SecretVariable = "SANDSTORM_AGENT_TEST_SECRET";
    public const string SecretValue = "agent-secret-7c1e";

    private readonly string root;

    public UnprivilegedAgent()
    {
        if (Environment.UserName != "root")
        {
            throw new InvalidOperationException("the unprivileged-agent tests start the agent as another user: run them as root");
        }

        if (Run("/usr/bin/id", ["-u", UserName]).Exit != 0)
        {
            var (exit, text) = Run("/usr/sbin/useradd", ["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", UserName]);
            if (exit != 0 && Run("/usr/bin/id", ["-u", UserName]).Exit != 0)
            {
                throw new InvalidOperationException($"useradd {UserName} failed: {text}");
            }
        }

        root = Directory.CreateTempSubdirectory("sandstorm-unprivileged-").FullName;
        Directory.CreateDirectory(Path.Combine(root, "home"));
        File.WriteAllText(Path.Combine(root, "home", "credential"), SecretValue);
        foreach (var path in new[] { root, Path.Combine(root, "home"), Path.Combine(root, "home", "credential") })
        {
            Assert.Equal(0, Run("/usr/bin/chown", [UserName + ":", path]).Exit);
        }

        Cli = typeof(EdgeCli).Assembly.Location;
    }

    /// <summary>The agent's work root (its TMPDIR's <c>sandstorm</c>).</summary>
    public string WorkRoot => Path.Combine(root, "sandstorm");

    /// <summary>A file only the agent's user can read.</summary>
    public string SecretFile => Path.Combine(root, "home", "credential");

    private string Cli { get; }

    /// <summary>Runs <c>sandstorm-edge ARGS</c> as the unprivileged user, with a fixed environment and the secret in it.</summary>
    public async Task<(int Exit, string Stdout, string Stderr)> RunCliAsync(IReadOnlyList<string> args)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "/usr/bin/dotnet";
        var psi = new ProcessStartInfo("/usr/sbin/runuser")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in (string[])["-u", UserName, "--", "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "HOME=" + Path.Combine(root, "home"), "TMPDIR=" + root,
                     "DOTNET_CLI_TELEMETRY_OPTOUT=1", SecretVariable + "=" + SecretValue, dotnet, Cli, .. args])
        {
            psi.ArgumentList.Add(argument);
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(limit.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs code with <c>sandstorm-edge exec --json</c> on the named runtime as the unprivileged user.</summary>
    public async Task<ExecutionResult> ExecAsync(string runtime, string language, string code, int memoryMiB = 256, int timeoutSeconds = 20)
    {
        var isolation = runtime == GvisorRuntime.RuntimeName ? "strong" : "standard";
        var (exit, stdout, stderr) = await RunCliAsync(
            ["exec", "--json", "--runtime", runtime, "--isolation", isolation, "--language", language, "--code", code,
             "--memory", memoryMiB.ToString(System.Globalization.CultureInfo.InvariantCulture),
             "--timeout", timeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        Assert.True(exit == 0, $"sandstorm-edge exec exited {exit}: {stderr}{stdout}");
        var result = JsonSerializer.Deserialize<ExecutionResult>(stdout, SandstormJson.Options)!;
        Assert.Equal(runtime, result.Runtime);
        return result;
    }

    /// <summary>No host process carries the execution's marker, and its scratch and bundle are gone.</summary>
    public void AssertNothingLeft(ExecutionResult result)
    {
        Assert.NotNull(result.ExecutionId);
        var marker = SandboxRuntimeBase.MarkerVariable + "=" + result.ExecutionId;
        var left = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _))
            {
                continue;
            }

            try
            {
                if (File.ReadAllText(Path.Combine(dir, "environ")).Split('\0').Contains(marker))
                {
                    left.Add(dir + " " + File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' '));
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Exited meanwhile.
            }
        }

        foreach (var dir in new[] { "scratch", "bundles" })
        {
            var path = Path.Combine(WorkRoot, dir, result.ExecutionId);
            if (Path.Exists(path))
            {
                left.Add(path);
            }
        }

        Assert.True(left.Count == 0, "left on the host: " + string.Join("; ", left));
    }

    public void Dispose()
    {
        // Rootless podman's pause process (it holds the user namespace its containers join) outlives the agent's commands.
        var options = new RuntimeOptions { WorkRoot = WorkRoot };
        var pause = PodmanRuntime.PauseProcessPidFile(options);
        if (File.Exists(pause) && int.TryParse(File.ReadAllText(pause).Trim(), out var pid))
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
                process.WaitForExit(10_000);
            }
            catch (ArgumentException)
            {
                // Gone already.
            }
        }

        try
        {
            var runRoot = PodmanRuntime.RootlessRunRoot(options, uint.Parse(Run("/usr/bin/id", ["-u", UserName]).Text.Trim(), System.Globalization.CultureInfo.InvariantCulture));
            if (Directory.Exists(runRoot))
            {
                Directory.Delete(runRoot, recursive: true);
            }

            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
            // A read-only rootfs template inside is removed by the next run's sweep of the temp directory.
        }
    }

    private static (int Exit, string Text) Run(string file, IReadOnlyList<string> args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, text);
    }
}
