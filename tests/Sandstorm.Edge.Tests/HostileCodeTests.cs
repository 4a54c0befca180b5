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

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public async Task SyscallsOutsideTheAllowList_FailWithAnErrno_AndTheCodeGoesOn(string runtime)
    {
        // Kernel surfaces no sandboxed program needs, among them calls a deny-list forgot (modify_ldt, personality flags,
        // move_pages), the x32 ABI and the 32-bit entry (int 0x80, run in a child: on kernels without it the child faults).
        // Each must fail with an errno, never run, and never kill the code.
        var result = await RunAsync(runtime, Languages.Python, """
            import ctypes, errno, mmap, os
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            buf = ctypes.create_string_buffer(4096)
            addr = ctypes.addressof(buf)
            def call(name, nr, *args):
                ctypes.set_errno(0)
                r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
                print(name, "ran" if r >= 0 else "refused-" + errno.errorcode.get(ctypes.get_errno(), "?"), flush=True)
            call("modify_ldt", 154, 0, addr, 16)
            call("personality-no-aslr", 135, 0x0040000)
            call("personality-query", 135, 0xffffffff)
            call("move_pages", 279, 0, 0, 0, 0, 0, 0)
            call("io_uring_setup", 425, 1, addr)
            call("userfaultfd", 323, 0)
            call("bpf", 321, 0, addr, 48)
            call("clone3", 435, 0, 0)
            call("kexec_load", 246, 0, 0, 0, 0)
            call("x32-getpid", 0x40000000 | 39)
            pid = os.fork()
            if pid == 0:
                code = bytes([0xb8, 0x14, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax, 20 (getpid); int 0x80; ret
                m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
                m.write(code)
                r = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))()
                print("int80-getpid", "ran" if r > 0 else "refused-" + errno.errorcode.get(-r, "?"), flush=True)
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status):
                print("int80-getpid faulted", os.WTERMSIG(status))
            print("still here")
            """);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("still here", result.Stdout, StringComparison.Ordinal);
        if (runtime != GvisorRuntime.RuntimeName)
        {
            // Allowed with the arguments ordinary programs pass (gVisor's own kernel answers EINVAL to the query).
            Assert.Contains("personality-query ran", result.Stdout, StringComparison.Ordinal);
        }

        foreach (var call in new[] { "modify_ldt", "personality-no-aslr", "move_pages", "io_uring_setup", "userfaultfd", "bpf", "clone3", "kexec_load", "x32-getpid", "int80-getpid" })
        {
            Assert.Contains(call + " ", result.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain(call + " ran", result.Stdout, StringComparison.Ordinal);
        }

        // glibc falls back from clone3 to clone only on ENOSYS.
        Assert.Contains("clone3 refused-ENOSYS", result.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(AllRuntimes))]
    public async Task EverydayPython_ThreadsProcessesPoolsAsyncioPip_StillWork(string runtime)
    {
        var result = await RunAsync(runtime, Languages.Python, """
            import asyncio, concurrent.futures, multiprocessing, os, subprocess, sys, threading
            seen = []
            threads = [threading.Thread(target=seen.append, args=(i,)) for i in range(4)]
            [t.start() for t in threads]
            [t.join() for t in threads]
            print("threads", sorted(seen))
            if __name__ == "__main__":
                with multiprocessing.Pool(2) as pool:
                    print("pool", pool.map(abs, [-1, -2, -3]))
                with concurrent.futures.ProcessPoolExecutor(2) as executor:
                    print("executor", list(executor.map(abs, [-4, -5])))
                q = multiprocessing.Queue()
                p = multiprocessing.Process(target=q.put, args=("via queue",))
                p.start(); print("process", q.get()); p.join()
            # gVisor's statx refuses the flags coreutils' ls passes (EINVAL, its own limitation): ls runs everywhere else.
            if os.environ.get("RUNTIME") != "gvisor":
                print("ls", subprocess.run(["ls"], capture_output=True, text=True).stdout.split())
            print("grep", subprocess.run("printf 'a\\nb\\n' | grep b | wc -l", shell=True, capture_output=True, text=True).stdout.strip())
            async def child():
                proc = await asyncio.create_subprocess_exec("echo", "async", stdout=asyncio.subprocess.PIPE)
                out, _ = await proc.communicate()
                await asyncio.sleep(0.01)
                return out.decode().strip()
            print("asyncio", asyncio.run(child()))
            pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
            print("pip", pip.returncode, pip.stdout.split()[:1], pip.stderr[-300:])
            """, memoryMiB: 512, timeoutSeconds: 60, environment: new Dictionary<string, string> { ["RUNTIME"] = runtime });

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(
            "threads [0, 1, 2, 3]\npool [1, 2, 3]\nexecutor [4, 5]\nprocess via queue\n"
                + (runtime == GvisorRuntime.RuntimeName ? "" : "ls ['main.py']\n")
                + "grep 1\nasyncio async\npip 0 ['pip'] \n",
            result.Stdout);
    }

    [Theory]
    [MemberData(nameof(AllRuntimes))]
    public async Task EverydayNodeAndBash_WorkersChildrenPipes_StillWork(string runtime)
    {
        var node = await RunAsync(runtime, Languages.JavaScript, """
            const { Worker } = require("worker_threads");
            const { execSync } = require("child_process");
            const crypto = require("crypto");
            const fs = require("fs");
            fs.writeFileSync("n.txt", "node");
            console.log("fs", fs.readFileSync("n.txt", "utf8"));
            console.log("child", execSync("cat n.txt | grep -c node").toString().trim());
            console.log("hash", crypto.createHash("sha256").update("x").digest("hex").slice(0, 8));
            new Worker("require('worker_threads').parentPort.postMessage(6 * 7)", { eval: true })
              .on("message", m => console.log("worker", m));
            """, memoryMiB: 512, timeoutSeconds: 60);
        Assert.Equal((0, "fs node\nchild 1\nhash 2d711642\nworker 42\n"), (node.ExitCode, node.Stdout));

        var bash = await RunAsync(runtime, Languages.Bash, """
            printf 'b\na\nc\n' > in.txt
            sort in.txt | head -2 | tr '\n' ' '; echo
            find . -name '*.txt' | xargs grep -l a | wc -l
            (sleep 0.1; echo sub) & wait
            awk 'END { print NR }' in.txt; sed -n 2p in.txt
            """);
        Assert.Equal((0, "a b \n1\nsub\n3\na\n"), (bash.ExitCode, bash.Stdout));
    }

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public async Task FillingDevShm_HitsASizeCap_AndLeavesTheHostsAlone(string runtime)
    {
        // The sandbox's /dev/shm is its own capped tmpfs: a file the host keeps there is not visible inside, and what the
        // code writes there never appears on the host.
        var marker = "sandstorm-shm-" + Guid.NewGuid().ToString("N");
        var hostFile = Path.Combine("/dev/shm", marker + "-host");
        File.WriteAllText(hostFile, "host");
        try
        {
            var result = await RunAsync(
                runtime,
                Languages.Bash,
                $"ls /dev/shm; dd if=/dev/zero of=/dev/shm/{marker} bs=1M count=200 2>&1; echo dd=$?; ls -ld /dev/shm",
                memoryMiB: 256);
            Assert.Contains("No space left on device", result.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("dd=0", result.Stdout, StringComparison.Ordinal);
            Assert.False(result.OomKilled, "the memory limit, not a size cap, stopped the writer");
            Assert.DoesNotContain(marker + "-host", result.Stdout, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine("/dev/shm", marker)), "the sandbox's /dev/shm file appeared on the host");
            Assert.Equal("host", File.ReadAllText(hostFile));
        }
        finally
        {
            File.Delete(hostFile);
        }
    }

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public async Task KillEveryProcess_ReachesOnlyTheSandbox(string runtime)
    {
        // Host processes of the sandbox user's uid and of the agent's own: a kill -9 -1 from a sandbox that shared the host's
        // pid space (or ran as the agent's user) would hit them.
        using var nobody = Process.Start("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "/usr/bin/sleep", "300"])!;
        using var own = Process.Start("/usr/bin/sleep", ["300"])!;
        try
        {
            var result = await RunAsync(runtime, Languages.Bash, "sleep 30 & kill -9 -1; wait; echo after $?");
            Assert.False(result.TimedOut);
            Assert.False(nobody.HasExited, "kill -9 -1 in the sandbox killed a host process of the sandbox user's uid");
            Assert.False(own.HasExited, "kill -9 -1 in the sandbox killed a host process of the agent's uid");
        }
        finally
        {
            nobody.Kill();
            own.Kill();
        }
    }

    [Theory]
    [MemberData(nameof(Sandboxes))]
    public async Task MountInfo_NamesNoHostPathButTheDocumentedOnes(string runtime)
    {
        var result = await RunAsync(runtime, Languages.Bash, "cat /proc/self/mountinfo");
        Assert.Equal(0, result.ExitCode);

        // Mount roots (4th field) are paths in the host's filesystems: /usr and the /etc files are the same paths inside,
        // tmpfs and proc roots are "/" (runc's and podman's root is a private tmpfs copy of the skeleton, not a bind of the
        // work root); podman adds its own state files. Nothing else of the host may show.
        var roots = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')[3]).ToList();
        // (bwrap's own root, and the device nodes it binds from the host's devtmpfs, are named relative to those.)
        var allowed = new List<string> { "/", "/usr", "/newroot", "/null", "/zero", "/full", "/random", "/urandom", "/tty" };
        allowed.AddRange(new[] { "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/nsswitch.conf", "/bus", "/fs", "/irq", "/sys" });
        var leaked = roots.Where(r => !allowed.Contains(r) && !r.StartsWith("/usr/", StringComparison.Ordinal)).ToList();
        if (runtime == PodmanRuntime.RuntimeName)
        {
            leaked.RemoveAll(r => r.StartsWith("/run/containers/storage/", StringComparison.Ordinal));
        }

        Assert.Empty(leaked);

        // Nor anywhere else in the text (mount sources, options): no path of the work root, of the test's own
        // directories on the host, or of the temporary directory the work root lives in.
        foreach (var hostPath in new[] { TestRuntimes.Options.WorkRoot, AppContext.BaseDirectory.TrimEnd('/'), Environment.CurrentDirectory, Path.GetDirectoryName(TestRuntimes.Options.WorkRoot)! + "/" })
        {
            Assert.DoesNotContain(hostPath, result.Stdout, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(AllRuntimes))]
    public async Task OddFileNames_AreWrittenExactly_NeverAsPathsOrEscapes(string runtime)
    {
        // A newline, a right-to-left override, a fullwidth solidus (a character, not a separator) and 255 bytes:
        // each arrives as exactly one file of exactly that name, beside the code.
        var names = new[] { "new\nline.txt", "\u202Etxt.exe", "a\uFF0Fb", new string('n', 255), "dir/nested.txt" };
        var result = await RunAsync(runtime, Languages.Python, """
            import json, os
            found = sorted(os.path.relpath(os.path.join(root, f), ".") for root, _, files in os.walk(".") for f in files if not f.startswith(".sandstorm-"))
            print(json.dumps(found))
            """, files: names.ToDictionary(n => n, n => n.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)));

        Assert.Equal(0, result.ExitCode);
        var found = System.Text.Json.JsonSerializer.Deserialize<string[]>(result.Stdout)!;
        Assert.Equal([.. names.Append("main.py").Order(StringComparer.Ordinal)], found.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(AllRuntimes))]
    public async Task AThousandAndOneFiles_AllArrive(string runtime)
    {
        var files = Enumerable.Range(0, 1001).ToDictionary(i => $"f/{i % 10}/file{i}.txt", i => i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var result = await RunAsync(runtime, Languages.Python, """
            import os
            print(sum(len(files) for _, _, files in os.walk("f")))
            """, files: files);
        Assert.Equal((0, "1001\n"), (result.ExitCode, result.Stdout));
    }

    [Theory]
    [InlineData("a name over 255 bytes", "longer than 255 bytes")]
    [InlineData("a file that is also a directory", "is not a directory")]
    [InlineData("a directory that is also a file", "already exists")]
    public async Task FileNamesTheHostCannotWrite_AreRefusedBeforeAnythingRuns(string what, string reason)
    {
        var files = what switch
        {
            "a name over 255 bytes" => new Dictionary<string, string> { [new string('n', 256)] = "x" },
            "a file that is also a directory" => new Dictionary<string, string> { ["a"] = "file", ["a/b"] = "file in it" },
            _ => new Dictionary<string, string> { ["a/b"] = "file in it", ["a"] = "file" },
        };
        var spec = new ExecutionSpec { Language = Languages.Bash, Code = "echo ran", Files = files, IsolationLevel = IsolationLevel.Standard };
        try
        {
            var refused = await Assert.ThrowsAsync<ArgumentException>(() => TestRuntimes.Get(BwrapRuntime.RuntimeName).ExecuteAsync(spec, CancellationToken.None));
            Assert.Contains(reason, refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            HostState.AssertClean();
        }
    }

    [Fact]
    public async Task RuncSandboxes_EachRunAsAHostUidOfItsOwn()
    {
        // Two at once: inside, both are nobody; on the host, each a uid of its own with its own process count.
        Assert.Contains(RuncRuntime.RuntimeName, TestRuntimes.WorkingAll());
        var runc = TestRuntimes.Get(RuncRuntime.RuntimeName);
        var spec = new ExecutionSpec
        {
            Language = Languages.Bash,
            Code = "id -u; stat -c %u /scratch/main.sh; ulimit -u; cat /proc/self/uid_map; sleep 1",
            MemoryMiB = 128,
            Timeout = TimeSpan.FromSeconds(30),
            IsolationLevel = IsolationLevel.Standard,
        };
        try
        {
            var runs = await Task.WhenAll(runc.ExecuteAsync(spec, CancellationToken.None), runc.ExecuteAsync(spec, CancellationToken.None));
            var bases = new List<long>();
            foreach (var run in runs)
            {
                output.WriteLine(run.Stdout + run.Stderr);
                var lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.Equal(0, run.ExitCode);
                Assert.Equal(["65534", "65534", ExecutionLimits.DefaultMaxProcesses.ToString(System.Globalization.CultureInfo.InvariantCulture)], lines[..3]);
                var map = lines[3].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                Assert.Equal(["0", "65536"], [map[0], map[2]]);
                bases.Add(long.Parse(map[1], System.Globalization.CultureInfo.InvariantCulture));
            }

            Assert.All(bases, b => Assert.InRange(b, RuncRuntime.UserNamespaceFirst, int.MaxValue - 65535));
            Assert.NotEqual(bases[0], bases[1]);
        }
        finally
        {
            HostState.AssertClean();
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
