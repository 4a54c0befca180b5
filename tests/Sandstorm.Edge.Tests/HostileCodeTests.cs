using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes;
using Xunit.Abstractions;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// Hostile code against every runtime that works here. Resource cases (fork bomb, memory bomb, endless loop, huge
/// output, leftover background processes) run on all of them, <c>process</c> included; the confinement cases
/// (filesystem, network, privileged syscalls) only on runtimes that claim standard isolation or better, since
/// <c>process</c> (isolation none) claims none. Every case ends by asserting the host is clean.
/// </summary>
public sealed class HostileCodeTests(ITestOutputHelper output)
{
    public static TheoryData<string> AllRuntimes() => [.. TestRuntimes.WorkingAll()];

    public static TheoryData<string> Sandboxes() => [.. TestRuntimes.WorkingSandboxes()];

    [Fact]
    public async Task Probe_ExpectedRuntimes_WorkOnThisMachine()
    {
        foreach (var (runtime, probe) in TestRuntimes.Probes)
        {
            output.WriteLine($"{runtime.Name,-14}{runtime.Isolation,-10}{(probe.Works ? "works" : "does not work: " + probe.Reason)}");
        }

        foreach (var name in TestRuntimes.Expected)
        {
            var probe = await TestRuntimes.Get(name).ProbeAsync(CancellationToken.None);
            Assert.True(probe.Works, $"{name} should work on this machine: {probe.Reason}");
        }

        Assert.False((await TestRuntimes.Get(MicroVmRuntime.RuntimeName).ProbeAsync(CancellationToken.None)).Works);
    }

    [Theory]
    [MemberData(nameof(AllRuntimes))]
    public async Task ForkBomb_IsBoundedByPidsLimit(string runtime)
    {
        var result = await RunAsync(runtime, Languages.Python, """
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
            """, timeoutSeconds: 20);
        Assert.False(result.TimedOut);
        Assert.Contains("fork refused after", result.Stdout);
        var forks = int.Parse(result.Stdout.Trim().Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(forks, 0, ExecutionLimits.DefaultMaxProcesses);
    }

    [Theory]
    [MemberData(nameof(AllRuntimes))]
    public async Task MemoryBomb_IsOomKilled(string runtime)
    {
        var result = await RunAsync(runtime, Languages.Python, """
            chunks = []
            while True:
                chunks.append(b"x" * (1 << 20))
            """, memoryMiB: 64, timeoutSeconds: 30);
        Assert.False(result.TimedOut);
        Assert.NotEqual(0, result.ExitCode);
        // gVisor may refuse the allocation itself (MemoryError) before the host limit kills the sandbox.
        Assert.True(result.OomKilled || result.Stderr.Contains("MemoryError", StringComparison.Ordinal), $"expected an OOM verdict: {result.Stderr}");
        var allowance = runtime == GvisorRuntime.RuntimeName ? GvisorRuntime.SentryOverheadMiB : 0;
        // The kernel's high-water mark may overshoot the limit by a page or so.
        Assert.InRange(result.PeakMemoryBytes, 1, (64L + allowance + 1) * 1024 * 1024);
    }

    [Theory]
    [InlineData("symlink")]
    [InlineData("fifo")]
    public async Task WarmGvisor_ExitFileReplacedByTheCode_NeitherHangsNorReadsTheHost(string kind)
    {
        // A warm gVisor sandbox reports its exit code through a file in /scratch, which the code can replace: with a
        // symlink to an endless host file, or a FIFO nobody writes. The host must read neither.
        Assert.Contains(GvisorRuntime.RuntimeName, TestRuntimes.WorkingAll());
        var started = Stopwatch.GetTimestamp();
        var result = await RunAsync(GvisorRuntime.RuntimeName, Languages.Python, $$"""
            import os
            names = [n for n in os.listdir("/scratch") if n.startswith(".sandstorm-exit")]
            for n in names:
                os.remove("/scratch/" + n)
                if "{{kind}}" == "symlink":
                    os.symlink("/dev/zero", "/scratch/" + n)
                else:
                    os.mkfifo("/scratch/" + n)
            print("replaced", len(names))
            raise SystemExit(3)
            """);
        Assert.Equal("replaced 1\n", result.Stdout);
        Assert.False(result.TimedOut);
        Assert.Null(result.ExitCode);
        Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(30));
    }

    [Theory]
    [MemberData(nameof(AllRuntimes))]
    public async Task CoreDumps_AreOffAndCannotBeTurnedOn(string runtime)
    {
        // A core dump would write the sandbox's memory to disk or hand it to the host's crash collector.
        var result = await RunAsync(runtime, Languages.Bash, "ulimit -Hc; ulimit -c unlimited 2>/dev/null && echo raised || echo refused");
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("0\nrefused\n", result.Stdout);
    }

    [Theory]
    [MemberData(nameof(AllRuntimes))]
    public async Task EndlessLoop_TimesOutAndIsKilled(string runtime)
    {
        var started = Stopwatch.GetTimestamp();
        var result = await RunAsync(runtime, Languages.Bash, "while :; do :; done", timeoutSeconds: 2);
        Assert.True(result.TimedOut);
        Assert.Null(result.ExitCode);
        Assert.False(result.OomKilled);
        Assert.InRange(result.WallTimeMs, 2000, 4000);
        Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(20));
    }

    [Theory]
    [MemberData(nameof(AllRuntimes))]
    public async Task GigabyteOfStdout_IsCappedAndTruncated(string runtime)
    {
        var started = Stopwatch.GetTimestamp();
        var result = await RunAsync(runtime, Languages.Bash, "dd if=/dev/zero bs=1M count=1024 status=none; echo done >&2", timeoutSeconds: 60);
        var elapsed = Stopwatch.GetElapsedTime(started);
        output.WriteLine($"{runtime}: 1 GiB of stdout drained in {elapsed.TotalSeconds:F1} s");
        Assert.False(result.TimedOut);
        Assert.Equal(0, result.ExitCode);
        Assert.True(result.StdoutTruncated);
        Assert.True(result.Truncated);
        Assert.Equal(ExecutionLimits.DefaultOutputLimitBytes, result.Stdout.Length);
        Assert.Equal("done\n", result.Stderr);
    }

    [Theory]
    [MemberData(nameof(AllRuntimes))]
    public async Task BackgroundProcesses_AreKilledWhenMainExits(string runtime)
    {
        // Plain, nohup'd, setsid'd and double-forked daemons: all must go when the main process ends.
        var result = await RunAsync(runtime, Languages.Bash, """
            sleep 300 &
            nohup sleep 301 >/dev/null 2>&1 &
            setsid sleep 302 >/dev/null 2>&1 < /dev/null &
            ( ( sleep 303 >/dev/null 2>&1 & ) & )
            echo started
            """, timeoutSeconds: 10);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("started\n", result.Stdout);
        Assert.False(result.TimedOut);
        Assert.True(result.WallTimeMs < 5000, $"main exit should end the sandbox at once, took {result.WallTimeMs} ms");
    }

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public async Task FillingScratch_HitsTheSizeCap(string runtime)
    {
        var result = await RunAsync(runtime, Languages.Bash, "dd if=/dev/zero of=/scratch/fill bs=1M count=200 2>&1; echo dd=$?", memoryMiB: 256);
        Assert.Contains("No space left on device", result.Stdout);
        Assert.DoesNotContain("dd=0", result.Stdout);
    }

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public async Task FillingTmp_HitsTheSizeCap(string runtime)
    {
        var result = await RunAsync(runtime, Languages.Bash, "dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>&1; echo dd=$?", memoryMiB: 256);
        // gVisor keeps /tmp in the sandbox's memory; either its size cap or the memory limit stops the writer.
        Assert.True(result.Stdout.Contains("No space left on device", StringComparison.Ordinal) || result.OomKilled, result.Stdout + result.Stderr);
        Assert.DoesNotContain("dd=0", result.Stdout);
    }

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public async Task ConnectingToHostLoopback_NeverArrives(string runtime)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var result = await RunAsync(runtime, Languages.Python, $$"""
            import socket
            for host in ("127.0.0.1", "localhost"):
                try:
                    socket.create_connection((host, {{port}}), timeout=2)
                    print("connected", host)
                except OSError as e:
                    print("refused", host, type(e).__name__)
            """);
        Assert.DoesNotContain("connected", result.Stdout);
        Assert.Contains("refused 127.0.0.1", result.Stdout);
        Assert.False(listener.Pending(), "a connection from the sandbox reached the host listener");
    }

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public async Task DnsLookup_Fails(string runtime)
    {
        var result = await RunAsync(runtime, Languages.Python, """
            import socket
            for name in ("example.com", "github.com"):
                try:
                    print("resolved", name, socket.getaddrinfo(name, 443)[0][4])
                except OSError as e:
                    print("no-dns", name)
            """);
        Assert.DoesNotContain("resolved", result.Stdout);
        Assert.Contains("no-dns example.com", result.Stdout);
    }

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public async Task ReadingHostSecrets_Fails(string runtime)
    {
        var result = await RunAsync(runtime, Languages.Python, """
            import os
            for path in ("/etc/shadow", "/etc/gshadow", "/root/.bashrc", "/root/.ssh/id_rsa", "/proc/1/environ"):
                try:
                    with open(path) as f:
                        print("read", path, len(f.read()))
                except OSError as e:
                    print("denied", path)
            try:
                print("listed /root", os.listdir("/root"))
            except OSError:
                print("denied /root")
            """);
        Assert.DoesNotContain("read /etc", result.Stdout);
        Assert.DoesNotContain("read /root", result.Stdout);
        Assert.DoesNotContain("listed /root", result.Stdout);
        Assert.Contains("denied /etc/shadow", result.Stdout);
    }

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public async Task WritingOutsideScratch_Fails(string runtime)
    {
        var marker = "sandstorm-escape-" + runtime;
        var result = await RunAsync(runtime, Languages.Bash, $$"""
            for f in /usr/{{marker}} /etc/{{marker}} /{{marker}} /bin/{{marker}} /var/tmp/{{marker}} /home/{{marker}}; do
              if echo x > "$f" 2>/dev/null; then echo "wrote $f"; else echo "denied $f"; fi
            done
            echo x > /scratch/ok && echo "scratch ok"
            """);
        Assert.DoesNotContain("wrote", result.Stdout);
        Assert.Contains("scratch ok", result.Stdout);
        foreach (var dir in new[] { "/usr", "/etc", "/", "/var/tmp", "/home", "/tmp" })
        {
            Assert.False(File.Exists(Path.Combine(dir, marker)), $"{dir}/{marker} appeared on the host");
        }
    }

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public async Task PrivilegedSyscalls_AreRefused(string runtime)
    {
        // ptrace, mount and new user namespaces (both unshare and clone flags) must fail with an error.
        var result = await RunAsync(runtime, Languages.Python, """
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            def report(name, rc):
                print(name, "ok" if rc == 0 else "refused")
            report("ptrace-traceme", libc.ptrace(0, 0, None, None))
            report("ptrace-attach", libc.ptrace(16, os.getppid() or 1, None, None))
            report("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
            report("unshare-user", libc.unshare(0x10000000))
            report("unshare-mount", libc.unshare(0x00020000))
            rc = os.system("unshare --user --map-root-user true 2>/dev/null")
            report("unshare-cli", rc)
            """);
        Assert.Equal(0, result.ExitCode);
        foreach (var call in new[] { "ptrace-traceme", "ptrace-attach", "mount", "unshare-user", "unshare-mount", "unshare-cli" })
        {
            Assert.Contains(call + " refused", result.Stdout);
        }
    }

    [Theory]
    [MemberData(nameof(AllRuntimes))]
    public async Task InheritedDescriptors_NeverReachTheCode(string runtime)
    {
        // A descriptor of the host process without close-on-exec (dup never sets it), as a shell or service manager leaves them.
        var leaked = dup(2);
        Assert.True(leaked > 2, "dup failed");
        try
        {
            var result = await RunAsync(runtime, Languages.Python, """
                import os
                print(" ".join(sorted(set(os.listdir("/proc/self/fd")) - {"0", "1", "2"}, key=int)))
                """);

            // Only the descriptor listdir itself opened is left.
            Assert.Equal((0, "3"), (result.ExitCode, result.Stdout.Trim()));
        }
        finally
        {
            _ = close(leaked);
        }
    }

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public Task TenantEnvironment_ReachesOnlyTheSandbox_NeverTheRuntimeBinaries(string runtime) =>
        AssertEnvironmentStaysInsideAsync(runtime, TestRuntimes.Get(runtime));

    [Fact]
    public async Task TenantEnvironment_ColdGvisor_ReachesOnlyTheSandbox()
    {
        // The case above runs gVisor in a warm sandbox, booted before the run's variables were known; a cold start
        // hands them to runsc's bundle.
        Assert.Contains(GvisorRuntime.RuntimeName, TestRuntimes.WorkingAll());
        await using var cold = new GvisorRuntime(TestRuntimes.Options with { WarmGvisorSandboxes = 0 });
        await AssertEnvironmentStaysInsideAsync(GvisorRuntime.RuntimeName, cold);
    }

    private async Task AssertEnvironmentStaysInsideAsync(string runtime, ISandboxRuntime sandbox)
    {
        // Variables the host side honours: the dynamic loader (debug output files, preloaded libraries, one of them
        // uploaded with the run and named relative to the working directory) and podman (remote service, storage,
        // temporary files). They point into a directory anyone may write, so a runtime binary on the host that
        // honoured them would leave a file there; inside the sandbox those paths do not exist.
        var probe = Directory.CreateTempSubdirectory("sandstorm-env-probe-");
        File.SetUnixFileMode(probe.FullName, (UnixFileMode)Convert.ToInt32("777", 8));
        try
        {
            var environment = new Dictionary<string, string>
            {
                ["LD_DEBUG"] = "libs",
                ["LD_DEBUG_OUTPUT"] = probe.FullName + "/ld-debug",
                ["LD_PRELOAD"] = "libpcprofile.so ./preload.so",
                ["PCPROFILE_OUTPUT"] = probe.FullName + "/pcprofile",
                ["CONTAINER_HOST"] = "unix://" + probe.FullName + "/podman.sock",
                ["STORAGE_OPTS"] = "overlay.mount_program=" + probe.FullName + "/mount",
                ["TMPDIR"] = probe.FullName + "/tmp",
                ["MULTI_LINE"] = "one\ntwo 'three' \"four\" $five",
            };
            var result = await RunAsync(
                runtime,
                sandbox,
                Languages.Bash,
                "printf 'inside: %s|%s|%s|%s|%s\\n' \"$CONTAINER_HOST\" \"$STORAGE_OPTS\" \"$TMPDIR\" \"$LD_DEBUG\" \"$MULTI_LINE\"",
                environment: environment,
                files: new Dictionary<string, string> { ["preload.so"] = "not a shared object" });

            Assert.Equal(0, result.ExitCode);
            Assert.Contains(
                $"inside: unix://{probe.FullName}/podman.sock|overlay.mount_program={probe.FullName}/mount|{probe.FullName}/tmp|libs|one\ntwo 'three' \"four\" $five\n",
                result.Stdout,
                StringComparison.Ordinal);
            Assert.Empty(Directory.EnumerateFileSystemEntries(probe.FullName));

            // The loader complains about the uploaded non-library once: in the sandboxed interpreter, and in no host process.
            Assert.Single(result.Stderr.Split('\n'), line => line.Contains("'./preload.so' from LD_PRELOAD cannot be preloaded", StringComparison.Ordinal));
        }
        finally
        {
            probe.Delete(recursive: true);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern int dup(int fd);

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern int close(int fd);

    private Task<ExecutionResult> RunAsync(
        string runtime,
        string language,
        string code,
        int memoryMiB = 128,
        double timeoutSeconds = 15,
        IReadOnlyDictionary<string, string>? environment = null,
        IReadOnlyDictionary<string, string>? files = null) =>
        RunAsync(runtime, TestRuntimes.Get(runtime), language, code, memoryMiB, timeoutSeconds, environment, files);

    private async Task<ExecutionResult> RunAsync(
        string runtime,
        ISandboxRuntime sandbox,
        string language,
        string code,
        int memoryMiB = 128,
        double timeoutSeconds = 15,
        IReadOnlyDictionary<string, string>? environment = null,
        IReadOnlyDictionary<string, string>? files = null)
    {
        var spec = new ExecutionSpec
        {
            Language = language,
            Code = code,
            MemoryMiB = memoryMiB,
            Timeout = TimeSpan.FromSeconds(timeoutSeconds),
            IsolationLevel = TestRuntimes.Get(runtime).Isolation,
            Environment = environment,
            Files = files,
        };
        try
        {
            // gVisor's cases run in a warm sandbox, as on the agent; its cold start is what the probe and the CLI use.
            // (A cold gVisor of a test's own is what it is.)
            var gvisor = sandbox == TestRuntimes.Gvisor ? TestRuntimes.Gvisor : null;
            var claims = gvisor?.WarmClaims;
            if (gvisor is not null)
            {
                Assert.True(await TestRuntimes.GvisorWarmAsync(), "no warm gVisor sandbox after 60 s");
            }

            // Likewise Python on `process` runs forked from the warm interpreter; its cold start is covered by the CLI tests.
            var forking = language == Languages.Python ? sandbox as ProcessRuntime : null;
            var forked = forking?.ForkedPythonRuns;
            if (forking is not null)
            {
                Assert.True(await forking.WaitForPythonForkServerAsync(TimeSpan.FromSeconds(30)), "the Python fork server did not start");
            }

            var result = await sandbox.ExecuteAsync(spec, CancellationToken.None);
            Assert.Equal(claims + 1, gvisor?.WarmClaims);
            Assert.Equal(forked + 1, forking?.ForkedPythonRuns);
            output.WriteLine($"{runtime}: exit={result.ExitCode} timedOut={result.TimedOut} oom={result.OomKilled} truncated={result.Truncated} wall={result.WallTimeMs}ms cpu={result.CpuTimeMs}ms peak={result.PeakMemoryBytes / 1024}KiB");
            output.WriteLine("stdout: " + Shorten(result.Stdout));
            output.WriteLine("stderr: " + Shorten(result.Stderr));
            return result;
        }
        finally
        {
            // Checked even when the case itself failed: a leak is the worse failure.
            HostState.AssertClean();
        }
    }

    private static string Shorten(string text) => text.Length <= 2000 ? text : text[..2000] + "…";
}
