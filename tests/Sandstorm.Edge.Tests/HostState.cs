using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Tests;

/// <summary>What a sandbox could leave behind on the host, gathered so a test can assert there is none.</summary>
internal static class HostState
{
    private static readonly string[] Controllers = ["memory", "pids", "cpu", "cpuacct"];

    /// <summary>
    /// Everything of this test run's sandboxes still on the host, except the warm gVisor sandbox kept ready on
    /// purpose (waited for first, so none is caught half-booted).
    /// </summary>
    public static IReadOnlyList<string> Leftovers()
    {
        return ExceptWarm(AllLeftovers());
    }

    private static IReadOnlyList<string> ExceptWarm(IEnumerable<string> items)
    {
        var warm = WarmSandboxIds();
        return [.. items.Where(item => !warm.Any(id => item.Contains(id, StringComparison.Ordinal)))];
    }

    private static IReadOnlyList<string> WarmSandboxIds()
    {
        // Only a working gVisor keeps a warm sandbox (where it does not, its own probe test says so).
        var gvisor = TestRuntimes.Gvisor;
        if (!TestRuntimes.Probes.Single(p => p.Runtime == gvisor).Probe.Works)
        {
            return [];
        }

        Assert.True(TestRuntimes.GvisorWarmAsync().GetAwaiter().GetResult(), "no warm gVisor sandbox after 60 s");
        return gvisor.WarmSandboxIds;
    }

    private static List<string> AllLeftovers()
    {
        var options = TestRuntimes.Options;
        var found = new List<string>();
        foreach (var controller in Controllers)
        {
            var parent = Path.Combine(options.CgroupRoot, controller, options.CgroupParent);
            if (Directory.Exists(parent))
            {
                found.AddRange(Directory.EnumerateDirectories(parent).Select(d => "cgroup " + d));
            }
        }

        foreach (var dir in new[] { "scratch", "bundles", "owners" })
        {
            var path = Path.Combine(options.WorkRoot, dir);
            if (Directory.Exists(path))
            {
                found.AddRange(Directory.EnumerateFileSystemEntries(path).Select(e => "directory " + e));
            }
        }

        // The fork server's FIFOs (one directory per process): a run removes its own.
        var fifos = Path.Combine(options.WorkRoot, "fifo");
        if (Directory.Exists(fifos))
        {
            found.AddRange(Directory.EnumerateFiles(fifos, "*", SearchOption.AllDirectories).Select(f => "fifo " + f));
        }

        // Field 5 of a mountinfo line is the mount point.
        found.AddRange(File.ReadLines("/proc/self/mountinfo").Where(l => l.Split(' ') is { Length: > 4 } f && f[4].StartsWith(options.WorkRoot + "/", StringComparison.Ordinal)).Select(l => "mount " + l));
        found.AddRange(AllSandboxProcesses().Select(p => "process " + p));

        var runcState = Path.Combine(options.WorkRoot, "runc-state");
        if (Directory.Exists(runcState) && File.Exists("/usr/sbin/runc"))
        {
            found.AddRange(TestRuntimes.Run("/usr/sbin/runc", "--root", runcState, "list", "-q").Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(c => "runc container " + c));
        }

        var runscState = Path.Combine(options.WorkRoot, "runsc-state");
        if (Directory.Exists(runscState) && File.Exists("/usr/bin/runsc"))
        {
            found.AddRange(TestRuntimes.Run("/usr/bin/runsc", "--root", runscState, "list", "-quiet").Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(c => "runsc sandbox " + c));
        }

        if (File.Exists("/usr/bin/podman"))
        {
            found.AddRange(TestRuntimes.Run("/usr/bin/podman", "--cgroup-manager=cgroupfs", "ps", "-a", "--filter", "label=sandstorm.workroot=" + options.WorkRoot, "--format", "{{.Names}}")
                .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(c => "podman container " + c));
        }

        return found;
    }

    /// <summary>Host processes of this test run's sandboxes, except those of the warm gVisor sandbox.</summary>
    public static IReadOnlyList<string> SandboxProcesses()
    {
        return ExceptWarm(AllSandboxProcesses());
    }

    /// <summary>Host processes carrying the sandbox marker that belong to this test run (its cgroup parent or work root).</summary>
    private static IEnumerable<string> AllSandboxProcesses()
    {
        var options = TestRuntimes.Options;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            string? found = null;
            try
            {
                var cgroup = File.ReadAllText(Path.Combine(dir, "cgroup"));
                var environ = File.ReadAllText(Path.Combine(dir, "environ"));
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                var ours = cgroup.Contains("/" + options.CgroupParent + "/", StringComparison.Ordinal)
                    || (environ.Contains(SandboxRuntimeBase.MarkerVariable + "=", StringComparison.Ordinal) && cmdline.Contains(options.WorkRoot, StringComparison.Ordinal));
                // The cgroup names the sandbox even for processes without a command line (gVisor's ptrace stubs).
                found = ours ? $"{pid} {cmdline} [{cgroup.Split('\n').FirstOrDefault(l => l.Contains("/" + options.CgroupParent + "/", StringComparison.Ordinal))}]" : null;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process ended while we looked.
            }

            if (found is not null)
            {
                yield return found;
            }
        }
    }

    public static void AssertClean()
    {
        var leftovers = Leftovers();
        Assert.True(leftovers.Count == 0, "left behind on the host:\n" + string.Join('\n', leftovers));
    }
}
