using System.Net;
using System.Net.Sockets;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes;
using Xunit.Abstractions;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// The qemu-microvm runtime (isolation <c>maximum</c>). Under TCG every boot costs seconds, so each case packs several
/// checks into one guest, and the microVM is kept out of <see cref="HostileCodeTests"/>' per-runtime theories. Every case
/// ends by asserting the host is clean: no QEMU process, cgroup, bundle or socket left.
/// </summary>
public sealed class MicroVmTests(ITestOutputHelper output)
{
    private static MicroVmRuntime MicroVm => TestRuntimes.All.OfType<MicroVmRuntime>().Single();

    [Fact]
    public async Task Probe_BuildsTheImageAndBoots_NamingTheAccelerator()
    {
        var probe = await MicroVm.ProbeAsync(CancellationToken.None);
        output.WriteLine($"{probe.Works} {probe.Reason} {probe.Limits}");

        Assert.True(probe.Works, probe.Reason);
        Assert.Matches("accelerator: (kvm|tcg) \\(", probe.Limits);
        Assert.Contains("guest cgroup v2", probe.Limits);
        if (!File.Exists("/dev/kvm"))
        {
            Assert.Contains("accelerator: tcg (no /dev/kvm)", probe.Limits);
        }
    }

    [Fact]
    public async Task Python_FilesEnvironmentStreamsAndExitCode_ComeBackExactly()
    {
        var result = await RunAsync(Languages.Python, """
            import os, sys, subprocess
            print("file:", open("data/input.txt").read().strip())
            print("env:", os.environ.get("GREETING"), os.environ.get("SANDSTORM_AGENT_SECRET"))
            print("uid:", os.getuid(), "cwd:", os.getcwd())
            print("bash:", subprocess.run(["bash", "-c", "echo $((6 * 7))"], capture_output=True, text=True).stdout.strip())
            print("to stderr", file=sys.stderr)
            sys.exit(3)
            """,
            environment: new Dictionary<string, string> { ["GREETING"] = "it's \"quoted\" $HOME" },
            files: new Dictionary<string, string> { ["data/input.txt"] = "from the host\n" });

        Assert.Equal(MicroVmRuntime.RuntimeName, result.Runtime);
        Assert.Equal(3, result.ExitCode);
        Assert.False(result.TimedOut);
        Assert.Equal("file: from the host\nenv: it's \"quoted\" $HOME None\nuid: 65534 cwd: /scratch\nbash: 42\n", result.Stdout);
        Assert.Equal("to stderr\n", result.Stderr);
        Assert.InRange(result.PeakMemoryBytes, 1, 128L * 1024 * 1024);
    }

    [Fact]
    public async Task HostileCode_HostFilesSecretsLoopbackDnsWritesAndDaemons_StayInTheGuest()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var marker = Path.Combine(TestRuntimes.Options.WorkRoot, "host-only-" + Environment.ProcessId);
        await File.WriteAllTextAsync(marker, "host secret");
        Environment.SetEnvironmentVariable("SANDSTORM_AGENT_SECRET", "agent-secret-value");
        try
        {
            var result = await RunAsync(Languages.Python, $$"""
                import os, socket, subprocess
                for path in ("/etc/shadow", "/root/.bashrc", "/proc/1/environ", "{{marker}}", "/usr/lib/os-release", "/etc/hostname"):
                    try:
                        with open(path, "rb") as f:
                            data = f.read()
                        print("read", path, b"agent-secret-value" in data)
                    except OSError:
                        print("denied", path)
                print("env has secret:", "agent-secret-value" in str(os.environ))
                for target in ("/usr/bin/python3", "/etc/passwd", "/usr/new-file"):
                    try:
                        open(target, "ab").close()
                        print("wrote", target)
                    except OSError:
                        print("refused", target)
                try:
                    socket.create_connection(("10.0.2.2", {{port}}), timeout=2)
                    print("connected gateway")
                except OSError:
                    print("no route gateway")
                try:
                    socket.create_connection(("127.0.0.1", {{port}}), timeout=2)
                    print("connected loopback")
                except OSError:
                    print("refused loopback")
                try:
                    socket.getaddrinfo("example.com", 443)
                    print("resolved")
                except OSError:
                    print("no-dns")
                print("interfaces:", sorted(os.listdir("/sys/class/net")))
                subprocess.Popen(["sh", "-c", "sleep 300 & setsid sleep 301 & nohup sleep 302 &"])
                print("daemons started")
                """);

            output.WriteLine(result.Stdout + result.Stderr);
            Assert.Equal(0, result.ExitCode);
            Assert.DoesNotContain("True", result.Stdout);
            Assert.Contains("denied /etc/shadow", result.Stdout);
            Assert.Contains("denied /root/.bashrc", result.Stdout);
            Assert.Contains($"denied {marker}", result.Stdout);
            Assert.Contains("env has secret: False", result.Stdout);
            Assert.DoesNotContain("wrote", result.Stdout);
            Assert.Contains("refused /usr/bin/python3", result.Stdout);
            Assert.Contains("no route gateway", result.Stdout);
            Assert.Contains("refused loopback", result.Stdout);
            Assert.Contains("no-dns", result.Stdout);
            Assert.Contains("interfaces: ['lo']", result.Stdout);
            Assert.Contains("daemons started", result.Stdout);
            Assert.False(listener.Pending(), "a connection from the guest reached the host listener");
        }
        finally
        {
            Environment.SetEnvironmentVariable("SANDSTORM_AGENT_SECRET", null);
            File.Delete(marker);
        }
    }

    [Fact]
    public async Task MemoryBombThenForkBomb_AreBoundedByTheGuestLimits()
    {
        var result = await RunAsync(Languages.Python, """
            import os, subprocess, sys, time
            # 16 MiB steps: a 1 MiB loop is stopped just the same, but thrashes the guest's page cache for many seconds under TCG first.
            bomb = subprocess.run([sys.executable, "-c", "chunks = []\nwhile True: chunks.append(b'x' * (16 << 20))"])
            print("memory bomb exit", bomb.returncode)
            n = 0
            try:
                while True:
                    if os.fork() == 0:
                        time.sleep(60)
                        os._exit(0)
                    n += 1
            except OSError:
                print("fork refused after", n)
            """, memoryMiB: 64, timeoutSeconds: 120);

        output.WriteLine(result.Stdout + result.Stderr);
        Assert.False(result.TimedOut);
        Assert.Contains("memory bomb exit -9", result.Stdout);
        Assert.True(result.OomKilled);
        Assert.InRange(result.PeakMemoryBytes, 1, (64L + 1) * 1024 * 1024);
        var forks = int.Parse(result.Stdout.Trim().Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(forks, 0, ExecutionLimits.DefaultMaxProcesses);
    }

    [Fact]
    public async Task EndlessLoop_TimesOutAndQemuIsKilled()
    {
        var result = await RunAsync(Languages.Bash, "echo looping; while :; do :; done", timeoutSeconds: 3);

        Assert.True(result.TimedOut);
        Assert.Null(result.ExitCode);
        Assert.Equal("looping\n", result.Stdout);
    }

    private static async Task<ExecutionResult> RunAsync(
        string language,
        string code,
        int memoryMiB = 128,
        double timeoutSeconds = 30,
        IReadOnlyDictionary<string, string>? environment = null,
        IReadOnlyDictionary<string, string>? files = null)
    {
        var probe = await MicroVm.ProbeAsync(CancellationToken.None);
        Assert.True(probe.Works, $"qemu-microvm does not work here: {probe.Reason}");
        try
        {
            return await MicroVm.ExecuteAsync(
                new ExecutionSpec
                {
                    Language = language,
                    Code = code,
                    MemoryMiB = memoryMiB,
                    Timeout = TimeSpan.FromSeconds(timeoutSeconds),
                    IsolationLevel = IsolationLevel.Maximum,
                    Environment = environment,
                    Files = files,
                },
                CancellationToken.None);
        }
        finally
        {
            HostState.AssertClean();
        }
    }
}
