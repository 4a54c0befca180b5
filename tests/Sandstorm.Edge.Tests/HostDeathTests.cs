using System.Diagnostics;
using System.Globalization;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// A control-plane host that is SIGKILLed gets no chance to clean up: the sandboxed children must die with it on
/// their own (the parent-death signal), or they would run on without a timeout. The host here is a real
/// <c>sandstorm-edge exec</c> process, killed while its sandbox sleeps.
/// </summary>
public sealed class HostDeathTests
{
    [Theory]
    [InlineData(ProcessRuntime.RuntimeName, "none")]
    [InlineData(BwrapRuntime.RuntimeName, "standard")]
    public async Task KilledHost_TakesItsSandboxedChildrenWithIt(string runtime, string isolation)
    {
        Assert.Contains(runtime, TestRuntimes.WorkingAll());
        // The host's own work root, so its leftovers (it cannot clean up) are told apart and removed below.
        var workRoot = Path.Combine(Path.GetTempPath(), "sandstorm-edge-hostdeath");
        Directory.CreateDirectory(workRoot);
        using var host = StartHost(workRoot, "exec", "--runtime", runtime, "--isolation", isolation, "--language", "python", "--code", "import time\ntime.sleep(600)", "--timeout", "900");
        List<int> sandboxed = [];
        string? id = null;
        var running = false;
        try
        {
            // Wait (bounded) until the interpreter runs under the host.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (DateTime.UtcNow < deadline && !host.HasExited)
            {
                sandboxed = Descendants(host.Id);
                id = sandboxed.Select(SandboxId).FirstOrDefault(i => i is not null);
                // The interpreter itself, not the launcher whose arguments merely name it: pdeathsig is armed by then.
                running = id is not null && sandboxed.Any(p => Cmdline(p).StartsWith("/usr/bin/python3 ", StringComparison.Ordinal));
                if (running)
                {
                    break;
                }

                await Task.Delay(50);
            }

            if (host.HasExited)
            {
                Assert.Fail("the host ended before its sandbox started: " + await host.StandardError.ReadToEndAsync());
            }

            Assert.True(running, "the sandboxed interpreter never showed up under the host");

            host.Kill();
            await host.WaitForExitAsync();

            deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline && sandboxed.Any(IsAlive))
            {
                await Task.Delay(50);
            }

            Assert.True(!sandboxed.Any(IsAlive), "outlived their SIGKILLed host: " + string.Join(", ", sandboxed.Where(IsAlive).Select(p => p + " " + Cmdline(p))));

            // The dead host could not clean up; the next process in the same work root sweeps what it left.
            Assert.NotNull(id);
            Assert.True(Directory.Exists(Path.Combine(workRoot, "sandstorm", "scratch", id)), "the killed host left no scratch to sweep");
            await RunOnceAsync(workRoot);
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(workRoot, "sandstorm", "owners")));
            Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(workRoot, "sandstorm", "scratch")));
            Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(workRoot + "/", StringComparison.Ordinal));
            Assert.All(new[] { "memory", "pids", "cpu", "cpuacct" }, c => Assert.False(Directory.Exists(Path.Combine("/sys/fs/cgroup", c, "sandstorm", id))));
        }
        finally
        {
            foreach (var pid in sandboxed.Where(IsAlive))
            {
                TestRuntimes.Run("/usr/bin/kill", "-KILL", pid.ToString(CultureInfo.InvariantCulture));
            }

            RemoveLeftovers(workRoot, id);
        }
    }

    // A `sandstorm-edge` process whose work root is under workRoot.
    private static Process StartHost(string workRoot, params string[] args)
    {
        var psi = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "Sandstorm.Edge"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment["TMPDIR"] = workRoot;
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        return Process.Start(psi)!;
    }

    // A second, short-lived host in the same work root.
    private static async Task RunOnceAsync(string workRoot)
    {
        using var next = StartHost(workRoot, "exec", "--runtime", ProcessRuntime.RuntimeName, "--isolation", "none", "--language", "bash", "--code", "echo swept");
        var output = next.StandardOutput.ReadToEndAsync();
        var error = next.StandardError.ReadToEndAsync();
        await next.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(next.ExitCode == 0, $"the next host failed: {await output} {await error}");
    }

    // What the killed host could not remove: its cgroups (empty once the children are gone), scratch tmpfs, bundle.
    private static void RemoveLeftovers(string workRoot, string? id)
    {
        if (id is not null)
        {
            foreach (var controller in new[] { "memory", "pids", "cpu", "cpuacct" })
            {
                var dir = Path.Combine("/sys/fs/cgroup", controller, "sandstorm", id);
                // A group stays busy for a moment after its last process exited; never hide the test's own verdict.
                for (var attempt = 0; attempt < 100 && Directory.Exists(dir); attempt++)
                {
                    try
                    {
                        Directory.Delete(dir);
                    }
                    catch (IOException)
                    {
                        Thread.Sleep(50);
                    }
                }
            }
        }

        foreach (var line in File.ReadLines("/proc/self/mountinfo").Where(l => l.Contains(workRoot + "/", StringComparison.Ordinal)).ToList())
        {
            TestRuntimes.Run("/usr/bin/umount", "-l", line.Split(' ')[4]);
        }

        Directory.Delete(workRoot, recursive: true);
    }

    private static List<int> Descendants(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid) && Status(pid, "PPid") is { } ppid)
            {
                parents[pid] = int.Parse(ppid, CultureInfo.InvariantCulture);
            }
        }

        var found = new List<int>();
        var frontier = new Queue<int>([root]);
        while (frontier.TryDequeue(out var parent))
        {
            foreach (var (pid, ppid) in parents.Where(p => p.Value == parent))
            {
                found.Add(pid);
                frontier.Enqueue(pid);
            }
        }

        return found;
    }

    // A zombie is dead: it only waits for its new parent to reap it.
    private static bool IsAlive(int pid) => Status(pid, "State") is { } state && !state.StartsWith('Z') && !state.StartsWith('X');

    private static string? Status(int pid, string field)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
            return line?[(field.Length + 1)..].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string Cmdline(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static string? SandboxId(int pid)
    {
        try
        {
            var marker = SandboxRuntimeBase.MarkerVariable + "=";
            return File.ReadAllText($"/proc/{pid}/environ").Split('\0').FirstOrDefault(v => v.StartsWith(marker, StringComparison.Ordinal))?[marker.Length..];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
