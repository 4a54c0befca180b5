using System.Diagnostics;
using System.Globalization;
using Sandstorm.Runtimes;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// The sweep of what dead processes left in a work root, on state laid out as the runtimes lay it out: a real cgroup
/// with a live process in it, a scratch directory and a private root beside it, a bundle, runc state, runsc's <c>&lt;id&gt;_*</c> entries. Removed:
/// the executions of owners that are gone and used this cgroup parent, and state with no owner record at all (from a
/// version before the records); kept: everything else, also an id that merely starts with a swept one.
/// </summary>
public sealed class OrphansTests
{
    [Fact]
    public async Task Sweep_RemovesWhatDeadOwnersLeft_AndNothingElse()
    {
        var options = TestRuntimes.Options with { WorkRoot = Directory.CreateTempSubdirectory("sandstorm-orphans-").FullName };
        var deadPid = DeadPid();
        var cgroups = SandboxCgroup.IsAvailable(options, out _);
        var cgroup = cgroups ? SandboxCgroup.Create(options, "orph1", 64L << 20, 16, 1) : null;
        var unowned = cgroups ? SandboxCgroup.Create(options, "lost1", 64L << 20, 16, 1) : null;
        using var sleeper = cgroup is null ? null : Process.Start("/usr/bin/sleep", "300");
        try
        {
            foreach (var procs in cgroup?.ProcsFiles ?? [])
            {
                File.WriteAllText(procs, sleeper!.Id.ToString(CultureInfo.InvariantCulture));
            }

            Owner(options, "orph1", deadPid, options.CgroupParent);
            Owner(options, "orph10", Environment.ProcessId, options.CgroupParent); // alive: this process
            Owner(options, "other", deadPid, "sandstorm/someone-else");             // another configuration's
            foreach (var id in new[] { "orph1", "orph10", "other", "lost1" })
            {
                Directory.CreateDirectory(Path.Combine(options.WorkRoot, "scratch", id));
                Directory.CreateDirectory(Path.Combine(options.WorkRoot, "scratch", id + Scratch.RootSuffix)); // runc's and podman's private root
                Directory.CreateDirectory(Path.Combine(options.WorkRoot, "bundles", id));
                Directory.CreateDirectory(Path.Combine(options.WorkRoot, "runc-state", id));
                Directory.CreateDirectory(Path.Combine(options.WorkRoot, "runsc-state", id + "_sandbox"));
                File.WriteAllText(Path.Combine(options.WorkRoot, "runsc-state", id + "_sandbox.state"), "{}");
            }

            Assert.Equal(2, await Orphans.SweepAsync(options));

            string[] kinds = ["scratch", "bundles", "runc-state"];
            foreach (var id in new[] { "orph1", "lost1" })
            {
                Assert.All(kinds, kind => Assert.False(Directory.Exists(Path.Combine(options.WorkRoot, kind, id)), kind + " of " + id));
                Assert.False(Directory.Exists(Path.Combine(options.WorkRoot, "scratch", id + Scratch.RootSuffix)), "private root of " + id);
                Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(options.WorkRoot, "runsc-state"), id + "_*"));
            }

            Assert.False(File.Exists(Path.Combine(options.WorkRoot, "owners", "orph1")));
            foreach (var id in new[] { "orph10", "other" })
            {
                Assert.All(kinds, kind => Assert.True(Directory.Exists(Path.Combine(options.WorkRoot, kind, id)), kind + " of " + id));
                Assert.True(Directory.Exists(Path.Combine(options.WorkRoot, "scratch", id + Scratch.RootSuffix)), "private root of " + id);
                Assert.Equal(2, Directory.EnumerateFileSystemEntries(Path.Combine(options.WorkRoot, "runsc-state"), id + "_*").Count());
                Assert.True(File.Exists(Path.Combine(options.WorkRoot, "owners", id)));
            }

            if (cgroup is not null)
            {
                Assert.True(sleeper!.WaitForExit(10_000), "the process left in the dead owner's cgroup was not killed");
                Assert.All(new[] { "memory", "pids" }, c => Assert.False(Directory.Exists(Path.Combine("/sys/fs/cgroup", c, options.CgroupParent, "orph1")), c));
                Assert.False(Directory.Exists(Path.Combine("/sys/fs/cgroup", "memory", options.CgroupParent, "lost1")), "the unowned execution's cgroup");
            }
        }
        finally
        {
            if (sleeper is { HasExited: false })
            {
                sleeper.Kill();
            }

            cgroup?.Remove();
            unowned?.Remove();
            Directory.Delete(options.WorkRoot, recursive: true);
        }
    }

    private static void Owner(RuntimeOptions options, string id, int pid, string cgroupParent)
    {
        Directory.CreateDirectory(Path.Combine(options.WorkRoot, "owners"));
        File.WriteAllText(Path.Combine(options.WorkRoot, "owners", id), pid.ToString(CultureInfo.InvariantCulture) + "\n" + cgroupParent + "\n");
    }

    // The pid of a process that has exited (and been reaped), so no live process holds it for a while.
    private static int DeadPid()
    {
        using var process = Process.Start("/usr/bin/true")!;
        process.WaitForExit();
        Assert.False(Directory.Exists($"/proc/{process.Id}"));
        return process.Id;
    }
}
