using System.Diagnostics;
using System.Text.RegularExpressions;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// The <c>process</c> runtime forks Python runs from a warm interpreter. A forked run must be indistinguishable from
/// <c>python3 -u main.py</c> started cold (same output, tracebacks, exit codes, environment), keep every limit, and die
/// with the server. Each case compares against the same runtime with the fork server off, on the same machine.
/// </summary>
public sealed partial class PythonForkServerTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private readonly ProcessRuntime _forking = new(TestRuntimes.Options);
    private readonly ProcessRuntime _cold = new(TestRuntimes.Options with { PythonForkServer = false });

    public async Task InitializeAsync() => Assert.True(await _forking.WaitForPythonForkServerAsync(TimeSpan.FromSeconds(30)), "the fork server did not start");

    public async Task DisposeAsync()
    {
        await _forking.DisposeAsync();
        await _cold.DisposeAsync();
    }

    public static TheoryData<string, string> Programs() => new()
    {
        {
            "identity",
            """
            import os, sys
            print("héllo ✓", __name__, os.path.basename(__file__), os.path.basename(sys.argv[0]), len(sys.argv))
            print(os.getcwd() == os.environ["HOME"] == os.path.dirname(__file__) == sys.path[0], repr(sys.stdin.read()))
            print(sorted(k for k in os.environ if k != "SANDSTORM_SANDBOX_ID"), os.environ["GREETING"])
            print(sys.stdout.encoding, sys.stdout.errors, sys.stderr.errors, sys.stdout.write_through, sys.stderr.line_buffering, sys.stdout.isatty())
            """
        },
        {
            "traceback",
            """
            import sys
            print("before", flush=True)
            def inner():
                raise ValueError("boom")
            inner()
            """
        },
        { "syntax-error", "print('unclosed'\nx = 1\n" },
        { "exit-code", "import sys\nprint('out')\nsys.exit(3)\n" },
        { "exit-message", "import sys\nsys.exit('bye')\n" },
        { "exit-big", "raise SystemExit(258)\n" },
        {
            "shutdown-order",
            """
            import atexit, threading, time
            atexit.register(lambda: print("atexit"))
            def late():
                time.sleep(0.2)
                print("thread")
            threading.Thread(target=late).start()
            print("main done")
            """
        },
        { "signal", "import os, signal\nprint('x', flush=True)\nos.kill(os.getpid(), signal.SIGTERM)\n" },
        { "hard-exit", "import os, sys\nsys.stdout.write('buffered? ')\nos._exit(7)\n" },
        {
            "descriptors",
            """
            import os
            print(" ".join(sorted(set(os.listdir("/proc/self/fd")) - {"0", "1", "2"}, key=int)))
            """
        },
        { "stderr", "import sys\nprint('to err', file=sys.stderr)\nprint('to out')\n" },
        { "keyboard-interrupt", "raise KeyboardInterrupt\n" },
        {
            "processes",
            """
            import multiprocessing, subprocess, sys
            if __name__ == "__main__":
                with multiprocessing.Pool(2) as pool:
                    print(pool.map(abs, [-1, -2, -3]))
                print(subprocess.run([sys.executable, "-c", "print(5)"], capture_output=True, text=True).stdout.strip())
            """
        },
        {
            // Globals are released at exit, after atexit handlers: their __del__ still runs.
            "finalizers",
            """
            import atexit
            class Resource:
                def __del__(self):
                    print("released")
            held = Resource()
            atexit.register(lambda: print("atexit"))
            print("end")
            """
        },
        {
            // Files are capped at the scratch size wherever they are written (isolation none writes to the host's /tmp).
            "file-size-cap",
            """
            import os, signal, tempfile
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            fd, path = tempfile.mkstemp()
            try:
                os.write(fd, b"x" * (40 * 1024 * 1024))
                print("written")
            except OSError as e:
                print("refused", e.errno)
            finally:
                os.unlink(path)
            """
        },
    };

    [Theory]
    [MemberData(nameof(Programs))]
    public async Task ForkedRun_IsIndistinguishableFromAColdStart(string name, string code)
    {
        var before = _forking.ForkedPythonRuns;
        var forked = await RunAsync(_forking, code);
        Assert.Equal(before + 1, _forking.ForkedPythonRuns);
        var cold = await RunAsync(_cold, code);
        output.WriteLine($"forked: exit {forked.ExitCode}\n{forked.Stdout}\n{forked.Stderr}\ncold: exit {cold.ExitCode}\n{cold.Stdout}\n{cold.Stderr}");

        Assert.Equal(
            (cold.ExitCode, cold.Stdout, Normalise(cold.Stderr), cold.TimedOut, cold.OomKilled),
            (forked.ExitCode, forked.Stdout, Normalise(forked.Stderr), forked.TimedOut, forked.OomKilled));
        Assert.False(string.IsNullOrEmpty(forked.Stdout + forked.Stderr) && name != "exit-big", $"{name} printed nothing");
        HostState.AssertClean();
    }

    [Fact]
    public async Task ForkedRun_FileLeftOpen_IsFlushedAtExit_AsByTheInterpreter()
    {
        // Only the interpreter's own shutdown (objects finalised after atexit) flushes a file the code never closed.
        var path = Path.Combine(Path.GetTempPath(), "sandstorm-fork-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await RunAsync(_forking, $"log = open({System.Text.Json.JsonSerializer.Serialize(path)}, 'w')\nlog.write('written at exit')\n");
            Assert.Equal(0, result.ExitCode);
            Assert.Equal("written at exit", await File.ReadAllTextAsync(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task ForkedRun_ImportsTheFilesBesideIt_AndReleasesTheirGlobals()
    {
        var files = new Dictionary<string, string>
        {
            ["helper.py"] = "class Noisy:\n    def __del__(self):\n        print('helper released')\nkept = Noisy()\ndef answer():\n    return 41\n",
        };
        var forked = await RunAsync(_forking, "import helper\nprint(helper.answer() + 1)\n", files: files);
        var cold = await RunAsync(_cold, "import helper\nprint(helper.answer() + 1)\n", files: files);
        Assert.Equal((0, "42\nhelper released\n"), (forked.ExitCode, forked.Stdout));
        Assert.Equal((cold.ExitCode, cold.Stdout, cold.Stderr), (forked.ExitCode, forked.Stdout, forked.Stderr));
    }

    [Fact]
    public async Task ForkedRun_IsAChildOfTheServer_NotOfTheHost()
    {
        var result = await RunAsync(_forking, "import os\nprint(os.getppid())\n");
        Assert.Equal(_forking.PythonForkServerPid?.ToString(System.Globalization.CultureInfo.InvariantCulture), result.Stdout.Trim());
    }

    [Fact]
    public async Task ForkedRun_MemoryBomb_IsOomKilled()
    {
        var result = await RunAsync(_forking, "x = bytearray(512 * 1024 * 1024)\nprint('survived')\n", memoryMiB: 64);
        Assert.True(result.OomKilled, $"exit {result.ExitCode}: {result.Stderr}");
        Assert.DoesNotContain("survived", result.Stdout);
        HostState.AssertClean();
    }

    [Fact]
    public async Task ForkedRun_PastItsTimeout_IsKilledWithEverythingItStarted()
    {
        var result = await RunAsync(
            _forking,
            "import subprocess, time\nsubprocess.Popen(['sleep', '600'])\nprint('started', flush=True)\ntime.sleep(600)\n",
            timeoutSeconds: 2);
        Assert.True(result.TimedOut);
        Assert.Null(result.ExitCode);
        Assert.Equal("started", result.Stdout.Trim());
        HostState.AssertClean();
    }

    [Fact]
    public async Task ForkedRun_EndlessOutput_IsCappedAndTruncated()
    {
        var result = await RunAsync(_forking, "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", timeoutSeconds: 5);
        Assert.True(result.StdoutTruncated);
        Assert.Equal(1024 * 1024, result.Stdout.Length);
        HostState.AssertClean();
    }

    [Fact]
    public async Task ServerDeath_EndsItsRuns_AndTheNextRunStillWorks()
    {
        var server = _forking.PythonForkServerPid!.Value;
        var forked = _forking.ForkedPythonRuns;
        var running = RunAsync(_forking, "import time\nprint('up', flush=True)\ntime.sleep(600)\n", timeoutSeconds: 120);

        // Killed only once the host has the child's pid (a server killed between the fork and its answer is the next test).
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (_forking.ForkedPythonRuns == forked && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(forked + 1, _forking.ForkedPythonRuns);

        Process.GetProcessById(server).Kill();
        var clock = Stopwatch.StartNew();
        var result = await running;
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"the run outlived its server by {clock.Elapsed}");
        Assert.Null(result.ExitCode);
        Assert.False(result.TimedOut);
        HostState.AssertClean();

        // The next run starts cold while the server comes back; the one after that is forked again.
        Assert.Equal("ok", (await RunAsync(_forking, "print('ok')\n")).Stdout.Trim());
        Assert.True(await _forking.WaitForPythonForkServerAsync(TimeSpan.FromSeconds(30)));
        var before = _forking.ForkedPythonRuns;
        Assert.Equal("ok", (await RunAsync(_forking, "print('ok')\n")).Stdout.Trim());
        Assert.Equal(before + 1, _forking.ForkedPythonRuns);
    }

    [Fact]
    public async Task ServerDeath_BetweenTheForkAndItsAnswer_EndsTheRun_WhichDoesNotStartAgain()
    {
        var server = _forking.PythonForkServerPid!.Value;
        var forked = _forking.ForkedPythonRuns;
        var marker = Path.Combine(Path.GetTempPath(), "sandstorm-fork-" + Guid.NewGuid().ToString("N"));
        _forking.ForkServer.ReplyDelay = TimeSpan.FromSeconds(60);
        try
        {
            var running = RunAsync(_forking, $"import time\nwith open('{marker}', 'a') as f: f.write('started\\n')\nprint('up', flush=True)\ntime.sleep(600)\n", timeoutSeconds: 120);
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!File.Exists(marker) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            // The code runs, and the host has no pid yet.
            Assert.True(File.Exists(marker), "the forked run never started");
            Assert.Equal(forked, _forking.ForkedPythonRuns);
            Process.GetProcessById(server).Kill();

            var result = await running;
            Assert.Null(result.ExitCode);
            Assert.False(result.TimedOut);
            Assert.Equal("up", result.Stdout.Trim());
            Assert.Equal(["started"], File.ReadAllLines(marker));
            HostState.AssertClean();
        }
        finally
        {
            _forking.ForkServer.ReplyDelay = TimeSpan.Zero;
            File.Delete(marker);
        }

        Assert.True(await _forking.WaitForPythonForkServerAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal("ok", (await RunAsync(_forking, "print('ok')\n")).Stdout.Trim());
    }

    [Fact]
    public async Task StuckServer_IsReplaced_AndTheRunStartsCold()
    {
        var server = _forking.PythonForkServerPid!.Value;
        TestRuntimes.Run("/usr/bin/kill", "-STOP", server.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var before = _forking.ForkedPythonRuns;
        var result = await RunAsync(_forking, "print('cold')\n", timeoutSeconds: 60);
        Assert.Equal((0, "cold"), (result.ExitCode, result.Stdout.Trim()));
        Assert.Equal(before, _forking.ForkedPythonRuns);

        Assert.True(await _forking.WaitForPythonForkServerAsync(TimeSpan.FromSeconds(30)));
        Assert.NotEqual(server, _forking.PythonForkServerPid);
        Assert.Equal("forked", (await RunAsync(_forking, "print('forked')\n")).Stdout.Trim());
        Assert.Equal(before + 1, _forking.ForkedPythonRuns);
        HostState.AssertClean();
    }

    [Fact]
    public async Task RemovedFifoDirectory_IsMadeAgain()
    {
        Directory.Delete(Path.Combine(TestRuntimes.Options.WorkRoot, "fifo", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)), recursive: true);
        var before = _forking.ForkedPythonRuns;
        Assert.Equal("ok", (await RunAsync(_forking, "print('ok')\n")).Stdout.Trim());
        Assert.Equal(before + 1, _forking.ForkedPythonRuns);
    }

    [Fact]
    public async Task NewServer_SweepsTheFifosOfAProcessThatDied()
    {
        // Above any pid_max: no live process has this pid.
        var dead = Path.Combine(TestRuntimes.Options.WorkRoot, "fifo", "4194305");
        Directory.CreateDirectory(dead);
        await File.WriteAllTextAsync(Path.Combine(dead, "ss0123456789abcdef.out"), "");
        var live = Path.Combine(TestRuntimes.Options.WorkRoot, "fifo", "1");
        Directory.CreateDirectory(live);

        await using var runtime = new ProcessRuntime(TestRuntimes.Options);
        Assert.True(await runtime.WaitForPythonForkServerAsync(TimeSpan.FromSeconds(30)));
        Assert.False(Directory.Exists(dead));
        Assert.True(Directory.Exists(live), "the directory of a live process (pid 1) was swept");
        Directory.Delete(live);
    }

    [Fact]
    public async Task RunSettingPythonVariables_StartsItsOwnInterpreter()
    {
        var before = _forking.ForkedPythonRuns;
        var result = await RunAsync(_forking, "import sys\nprint(sys.flags.optimize)\n", environment: new() { ["PYTHONOPTIMIZE"] = "1" });
        Assert.Equal("1", result.Stdout.Trim());
        Assert.Equal(before, _forking.ForkedPythonRuns);
    }

    private static async Task<ExecutionResult> RunAsync(
        ProcessRuntime runtime, string code, int memoryMiB = 128, double timeoutSeconds = 15, Dictionary<string, string>? environment = null,
        Dictionary<string, string>? files = null)
    {
        var spec = new ExecutionSpec
        {
            Language = Languages.Python,
            Code = code,
            MemoryMiB = memoryMiB,
            Timeout = TimeSpan.FromSeconds(timeoutSeconds),
            IsolationLevel = IsolationLevel.None,
            Environment = environment ?? new Dictionary<string, string> { ["GREETING"] = "hi" },
            Files = files,
        };
        return await runtime.ExecuteAsync(spec, CancellationToken.None);
    }

    // Each run has its own scratch directory, named by its sandbox id.
    private static string Normalise(string text) => SandboxId().Replace(text, "ID");

    [GeneratedRegex("ss[0-9a-f]{16}")]
    private static partial Regex SandboxId();
}
