using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// The work root must be private: another local user who created it first or can write in it could plant an allow-all
/// seccomp filter or an <c>ld.so.preload</c>, or swap a scratch directory for a symlink that root then mounts over,
/// writes through and chowns. Each case lays out what such a user would and checks the runtimes refuse it or undo it.
/// </summary>
public sealed class WorkRootTests : IDisposable
{
    // Any uid other than ours stands for "another local user"; root can give files to it.
    private const int Stranger = 4242;

    private readonly DirectoryInfo parent = Directory.CreateTempSubdirectory("sandstorm-workroot-");

    public WorkRootTests()
    {
        // Like /tmp: others may create entries here, but not rename ours.
        File.SetUnixFileMode(parent.FullName, (UnixFileMode)Convert.ToInt32("1777", 8));
    }

    private string Root => Path.Combine(parent.FullName, "work");

    private RuntimeOptions Options => TestRuntimes.Options with { WorkRoot = Root };

    [Fact]
    public void EnsurePrivate_MissingWorkRoot_IsCreatedTraverseOnly_WithPrivateDirectories()
    {
        WorkRoot.EnsurePrivate(Options);

        Assert.Equal(WorkRoot.TraverseOnly, File.GetUnixFileMode(Root));
        Assert.Equal(WorkRoot.TraverseOnly, File.GetUnixFileMode(Path.Combine(Root, "scratch")));
        Assert.Equal(WorkRoot.TraverseOnly, File.GetUnixFileMode(Path.Combine(Root, "template")));
        foreach (var name in new[] { "bundles", "owners", "seccomp", "runc-state", "fifo" })
        {
            Assert.Equal(WorkRoot.Private, File.GetUnixFileMode(Path.Combine(Root, name)));
        }
    }

    [Fact]
    public void EnsurePrivate_EarlierVersionsOpenWorkRoot_IsTightened()
    {
        // 0755, as earlier versions made it: ours and written by nobody else, so nothing in it can be a stranger's.
        var open = (UnixFileMode)Convert.ToInt32("755", 8);
        Directory.CreateDirectory(Path.Combine(Root, "template"), open);
        Directory.CreateDirectory(Path.Combine(Root, "bundles"), open);
        File.SetUnixFileMode(Root, open);
        File.SetUnixFileMode(Path.Combine(Root, "template"), open);
        File.SetUnixFileMode(Path.Combine(Root, "bundles"), open);

        WorkRoot.EnsurePrivate(Options);

        Assert.Equal(WorkRoot.TraverseOnly, File.GetUnixFileMode(Root));
        Assert.Equal(WorkRoot.TraverseOnly, File.GetUnixFileMode(Path.Combine(Root, "template")));
        Assert.Equal(WorkRoot.Private, File.GetUnixFileMode(Path.Combine(Root, "bundles")));
    }

    [Fact]
    public async Task WorkRootOfAnotherUser_IsRefusedWithTheReason_AndNothingRunsInIt()
    {
        Directory.CreateDirectory(Root);
        Assert.Equal(0, Libc.chown(Root, Stranger, Stranger));
        var bwrap = new BwrapRuntime(Options);

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => bwrap.ExecuteAsync(Spec("echo ran"), CancellationToken.None));
        Assert.Contains($"is owned by uid {Stranger}, not by this process's user", refused.Message, StringComparison.Ordinal);
        var probe = await bwrap.ProbeAsync(CancellationToken.None);
        Assert.False(probe.Works);
        Assert.Contains($"is owned by uid {Stranger}", probe.Reason, StringComparison.Ordinal);

        // Not one of our directories was made in it.
        Assert.Empty(Directory.EnumerateFileSystemEntries(Root));
    }

    [Fact]
    public void WorkRootWritableByOthers_IsRefused()
    {
        Directory.CreateDirectory(Root);
        File.SetUnixFileMode(Root, (UnixFileMode)Convert.ToInt32("777", 8));

        var problem = WorkRoot.Problem(Options);

        Assert.NotNull(problem);
        Assert.Contains("is writable by other users (mode 0777)", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void SymlinkedWorkRoot_IsRefused()
    {
        var elsewhere = Directory.CreateDirectory(Path.Combine(parent.FullName, "elsewhere"));
        File.CreateSymbolicLink(Root, elsewhere.FullName);

        var problem = WorkRoot.Problem(Options);

        Assert.NotNull(problem);
        Assert.Contains("is a symlink", problem, StringComparison.Ordinal);
        Assert.Empty(elsewhere.EnumerateFileSystemInfos());
    }

    [Fact]
    public void ParentWritableByOthersWithoutStickyBit_IsRefused()
    {
        File.SetUnixFileMode(parent.FullName, (UnixFileMode)Convert.ToInt32("777", 8));

        var problem = WorkRoot.Problem(Options);

        Assert.NotNull(problem);
        Assert.Contains($"its parent {parent.FullName} is writable by other users (mode 0777) without the sticky bit", problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PlantedSeccompFilter_OfAnotherUser_IsCompiledAgain()
    {
        // An allow-all filter where the real one would be, as a stranger who could write the work root would leave it.
        WorkRoot.EnsurePrivate(Options);
        var filter = SeccompPolicy.FilterPath(Options);
        Directory.CreateDirectory(Path.GetDirectoryName(filter)!);
        TestRuntimes.Run("/usr/bin/python3", "-c", "import seccomp, sys; seccomp.SyscallFilter(seccomp.ALLOW).export_bpf(open(sys.argv[1], 'wb'))", filter);
        Assert.Equal(0, Libc.chown(filter, Stranger, Stranger));

        var result = await new BwrapRuntime(Options).ExecuteAsync(
            Spec("""python3 -c 'import ctypes; print("ptrace", ctypes.CDLL(None).ptrace(0, 0, None, None))'"""),
            CancellationToken.None);

        Assert.Equal("ptrace -1\n", result.Stdout);
        Assert.True(HostLayout.IsOwnFile(filter), "the planted filter is still there");
    }

    [Fact]
    public void PlantedLdSoPreload_InTheRootTemplate_IsRemoved()
    {
        // A skeleton from before (its ready marker says it is complete) with a preload list in its /etc.
        WorkRoot.EnsurePrivate(Options);
        var template = Path.Combine(Root, "template");
        var rootfs = OciBundle.RootfsTemplate(Options with { WorkRoot = Path.Combine(parent.FullName, "model") });
        CopyTree(rootfs, Path.Combine(template, "rootfs"));
        foreach (var marker in Directory.EnumerateFiles(Path.GetDirectoryName(rootfs)!, "rootfs.ready-*"))
        {
            File.WriteAllText(Path.Combine(template, Path.GetFileName(marker)), "");
        }

        var preload = Path.Combine(template, "rootfs", "etc", "ld.so.preload");
        File.WriteAllText(preload, "/scratch/evil.so\n");

        var used = OciBundle.RootfsTemplate(Options);

        Assert.Equal(Path.Combine(template, "rootfs"), used);
        Assert.False(File.Exists(preload), "ld.so.preload is still in the template");
        Assert.True(File.Exists(Path.Combine(used, "etc", "passwd")));
    }

    [Fact]
    public void RootTemplateWithAStrangersFile_IsMadeAgain()
    {
        WorkRoot.EnsurePrivate(Options);
        var template = Path.Combine(Root, "template");
        var rootfs = OciBundle.RootfsTemplate(Options with { WorkRoot = Path.Combine(parent.FullName, "model") });
        CopyTree(rootfs, Path.Combine(template, "rootfs"));
        foreach (var marker in Directory.EnumerateFiles(Path.GetDirectoryName(rootfs)!, "rootfs.ready-*"))
        {
            File.WriteAllText(Path.Combine(template, Path.GetFileName(marker)), "");
        }

        var planted = Path.Combine(template, "rootfs", "scratch", "planted");
        File.WriteAllText(planted, "x");
        Assert.Equal(0, Libc.chown(planted, Stranger, Stranger));

        var used = OciBundle.RootfsTemplate(Options);

        Assert.False(File.Exists(planted), "a stranger's file is still in the template");
        Assert.True(Directory.Exists(Path.Combine(used, "usr")));
    }

    [Fact]
    public void ScratchWrites_ThroughPlantedLinks_NeverReachTheHost()
    {
        // What code in a sandbox (or a stranger) could leave in a scratch before the host writes into it: the main file
        // and a directory of the files as links to host paths.
        WorkRoot.EnsurePrivate(Options);
        var victim = Path.Combine(parent.FullName, "victim");
        var victimDir = Directory.CreateDirectory(Path.Combine(parent.FullName, "victim-dir"));
        File.WriteAllText(victim, "host file\n");
        var scratch = Scratch.CreateEmpty(Options, "sslinks" + Environment.ProcessId, (65534, 65534));
        try
        {
            File.CreateSymbolicLink(Path.Combine(scratch.HostPath, "main.sh"), victim);
            File.CreateSymbolicLink(Path.Combine(scratch.HostPath, "d"), victimDir.FullName);

            var main = Assert.Throws<ArgumentException>(() => scratch.Populate(Spec("echo hi"), (65534, 65534)));
            Assert.Contains("'main.sh' already exists", main.Message, StringComparison.Ordinal);
            File.Delete(Path.Combine(scratch.HostPath, "main.sh"));
            var spec = Spec("echo hi") with { Files = new Dictionary<string, string> { ["d/x"] = "through the link" } };
            var dir = Assert.Throws<ArgumentException>(() => scratch.Populate(spec, (65534, 65534)));
            Assert.Contains("'d' is not a directory", dir.Message, StringComparison.Ordinal);

            Assert.Equal("host file\n", File.ReadAllText(victim));
            Assert.Equal(0u, Libc.LStat(victim)!.Value.Uid);
            Assert.Empty(victimDir.EnumerateFileSystemInfos());
            Assert.Equal(0u, Libc.LStat(victimDir.FullName)!.Value.Uid);
        }
        finally
        {
            scratch.Remove();
        }
    }

    [Fact]
    public void ScratchWhoseNameIsTakenByALink_IsNeverMountedThrough()
    {
        WorkRoot.EnsurePrivate(Options);
        var target = Directory.CreateDirectory(Path.Combine(parent.FullName, "mount-target"));
        var id = "sslink" + Environment.ProcessId;
        File.CreateSymbolicLink(Path.Combine(Root, "scratch", id), target.FullName);
        try
        {
            Assert.Throws<IOException>(() => Scratch.CreateEmpty(Options, id, (65534, 65534)));

            Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Contains(" " + target.FullName + " ", StringComparison.Ordinal));
            Assert.Equal(0u, Libc.LStat(target.FullName)!.Value.Uid);
        }
        finally
        {
            // Undo what an unfixed version would have done.
            Libc.umount2(target.FullName, Libc.MNT_DETACH);
        }
    }

    public void Dispose()
    {
        foreach (var line in File.ReadLines("/proc/self/mountinfo").Where(l => l.Contains(parent.FullName + "/", StringComparison.Ordinal)).ToList())
        {
            Libc.umount2(line.Split(' ')[4], Libc.MNT_DETACH);
        }

        parent.Delete(recursive: true);
    }

    private static ExecutionSpec Spec(string bash) => new() { Language = Languages.Bash, Code = bash, MemoryMiB = 128, Timeout = TimeSpan.FromSeconds(20), IsolationLevel = IsolationLevel.Standard };

    private static void CopyTree(string from, string to)
    {
        TestRuntimes.Run("/bin/cp", "-a", from, to);
        Assert.True(Directory.Exists(Path.Combine(to, "usr")), "copy of the model template failed");
    }
}
