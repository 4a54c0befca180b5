using System.Globalization;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// The cgroup v1 group of one execution: <c>&lt;root&gt;/{memory,pids,cpu,cpuacct}/&lt;parent&gt;/&lt;id&gt;</c>.
/// Limits live here rather than in each runtime's own config so every runtime (and any sub-cgroups runc,
/// runsc or podman create below it) is bounded, measured and killed the same way.
/// </summary>
internal sealed class SandboxCgroup
{
    private static readonly string[] Controllers = ["memory", "pids", "cpu", "cpuacct"];
    private readonly string[] directories;

    private SandboxCgroup(RuntimeOptions options, string id)
    {
        Options = options;
        RelativePath = "/" + options.CgroupParent + "/" + id;
        directories = [.. Controllers.Select(c => Path.Combine(options.CgroupRoot, c, options.CgroupParent, id))];
    }

    /// <summary>Path relative to each hierarchy's root, e.g. <c>/sandstorm/ab12</c> (for OCI cgroupsPath of a child group).</summary>
    public RuntimeOptions Options { get; }

    public string RelativePath { get; }

    /// <summary>cgroup.procs files a launcher writes its own pid into before exec-ing the sandbox.</summary>
    public IEnumerable<string> ProcsFiles => directories.Select(d => Path.Combine(d, "cgroup.procs"));

    private string Memory => directories[0];

    private string Pids => directories[1];

    private string Cpu => directories[2];

    private string CpuAcct => directories[3];

    /// <summary>True when this process can create cgroups under the parent in every controller we need.</summary>
    public static bool IsAvailable(RuntimeOptions options, out string? reason)
    {
        reason = null;
        if (!options.UseCgroups)
        {
            reason = "cgroups disabled by options";
            return false;
        }

        if (!Libc.IsRoot)
        {
            reason = "not root: cgroup v1 hierarchies are not writable";
            return false;
        }

        foreach (var controller in Controllers)
        {
            var hierarchy = Path.Combine(options.CgroupRoot, controller);
            if (!File.Exists(Path.Combine(hierarchy, "cgroup.procs")))
            {
                reason = $"cgroup v1 controller '{controller}' is not mounted at {hierarchy}";
                return false;
            }

            try
            {
                Directory.CreateDirectory(Path.Combine(hierarchy, options.CgroupParent));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                reason = $"cannot create cgroup under {hierarchy}: {e.Message}";
                return false;
            }
        }

        return true;
    }

    /// <summary>The groups of an execution that may exist from before (to remove them).</summary>
    public static SandboxCgroup Existing(RuntimeOptions options, string id) => new(options, id);

    public static SandboxCgroup Create(RuntimeOptions options, string id, long memoryBytes, int maxPids, double cpus)
    {
        var group = new SandboxCgroup(options, id);
        try
        {
            foreach (var dir in group.directories)
            {
                Directory.CreateDirectory(dir);
            }

            group.SetLimits(memoryBytes, maxPids, cpus);
            return group;
        }
        catch
        {
            group.Remove();
            throw;
        }
    }

    /// <summary>Sets (or changes) the memory, pids and CPU limits; lowering memory below what is in use fails.</summary>
    public void SetLimits(long memoryBytes, int maxPids, double cpus)
    {
        // Swap would let a memory bomb outlive its limit; the memsw file exists only with swap accounting. The
        // kernel keeps memsw >= memory, so memsw goes first when raising and last when lowering (one of the two
        // memsw writes is refused, the other lands).
        var memory = memoryBytes.ToString(CultureInfo.InvariantCulture);
        TryWrite(Path.Combine(Memory, "memory.memsw.limit_in_bytes"), memory);
        File.WriteAllText(Path.Combine(Memory, "memory.limit_in_bytes"), memory);
        TryWrite(Path.Combine(Memory, "memory.memsw.limit_in_bytes"), memory);
        File.WriteAllText(Path.Combine(Pids, "pids.max"), maxPids.ToString(CultureInfo.InvariantCulture));
        const int period = 100_000;
        File.WriteAllText(Path.Combine(Cpu, "cpu.cfs_period_us"), period.ToString(CultureInfo.InvariantCulture));
        var quota = cpus > 0 ? (long)Math.Max(1000, cpus * period) : -1;
        File.WriteAllText(Path.Combine(Cpu, "cpu.cfs_quota_us"), quota.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Clears the peak-memory and failure counters, so the stats cover only what runs from now on.</summary>
    public void ResetCounters()
    {
        foreach (var counter in new[] { "memory.max_usage_in_bytes", "memory.failcnt", "memory.memsw.max_usage_in_bytes", "memory.memsw.failcnt" })
        {
            TryWrite(Path.Combine(Memory, counter), "0");
        }

        TryWrite(Path.Combine(CpuAcct, "cpuacct.usage"), "0");
    }

    /// <summary>
    /// Whether any process has run in the group since it was made or its counters were reset: one is in it now, or
    /// CPU time was charged to it (a process is charged from the moment it joins, and the charge stays after it is gone).
    /// </summary>
    public bool EverRan() => !IsEmpty() || ReadLong(Path.Combine(CpuAcct, "cpuacct.usage")) > 0;

    /// <summary>CPU time, peak memory and whether the kernel's OOM killer acted, read before the group is removed.</summary>
    public (long CpuTimeMs, long PeakMemoryBytes, bool OomKilled) ReadStats()
    {
        var cpuNs = ReadLong(Path.Combine(CpuAcct, "cpuacct.usage"));
        var peak = ReadLong(Path.Combine(Memory, "memory.max_usage_in_bytes"));
        // In v1 the kill is counted in the victim's own group, which may be a sub-group a runtime made.
        var oom = false;
        foreach (var group in SubtreeOf(Memory))
        {
            try
            {
                foreach (var line in File.ReadLines(Path.Combine(group, "memory.oom_control")))
                {
                    oom |= line.StartsWith("oom_kill ", StringComparison.Ordinal) && ReadNumber(line["oom_kill ".Length..]) > 0;
                }
            }
            catch (IOException)
            {
            }
        }

        return (cpuNs / 1_000_000, peak, oom);
    }

    /// <summary>True when the memory limit was hit at least once (evidence for an OOM verdict on exit 137).</summary>
    /// <remarks>
    /// The OOM kill itself is counted in the victim's group, and runc and podman delete their sub-groups as their
    /// container exits; what survives in ours is the failure counters and a high-water mark at the limit (this
    /// kernel does not always bump failcnt on v1, so the high-water mark within a MiB of the limit counts too).
    /// </remarks>
    public bool MemoryLimitHit()
    {
        if (ReadLong(Path.Combine(Memory, "memory.failcnt")) > 0 || ReadLong(Path.Combine(Memory, "memory.memsw.failcnt")) > 0)
        {
            return true;
        }

        var limit = ReadLong(Path.Combine(Memory, "memory.limit_in_bytes"));
        return limit > 0 && ReadLong(Path.Combine(Memory, "memory.max_usage_in_bytes")) >= limit - (1024 * 1024);
    }

    private static List<string> SubtreeOf(string dir)
    {
        var all = new List<string> { dir };
        try
        {
            all.AddRange(Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories));
        }
        catch (IOException)
        {
        }

        return all;
    }

    /// <summary>Kills every process in the group and its sub-groups until none is left or the deadline passes.</summary>
    /// <remarks>
    /// Each victim is signalled and awaited through a pidfd: the wait ends the moment the last one has exited (and
    /// so left the group), where sleeping between rounds cost a whole tick even when a process was already dying.
    /// Another round follows while anything is listed, for processes forked between the listing and the signal.
    /// </remarks>
    public Task<bool> KillAllAsync(TimeSpan grace, TimeProvider time)
    {
        var started = time.GetTimestamp();
        while (true)
        {
            var pids = AllPids().ToList();
            if (pids.Count == 0)
            {
                return Task.FromResult(true);
            }

            var fds = new List<Libc.PollFd>(pids.Count);
            foreach (var pid in pids)
            {
                var fd = Libc.PidfdOpen(pid);
                if (fd < 0)
                {
                    // Already gone, or pidfds are unavailable: a plain signal still works.
                    Libc.kill(pid, Libc.SIGKILL);
                    continue;
                }

                Libc.PidfdSendSignal(fd, Libc.SIGKILL);
                fds.Add(new Libc.PollFd { Fd = fd, Events = Libc.POLLIN });
            }

            try
            {
                var left = grace - time.GetElapsedTime(started);
                if (left <= TimeSpan.Zero)
                {
                    return Task.FromResult(false);
                }

                WaitForExit(fds, left);
            }
            finally
            {
                foreach (var fd in fds)
                {
                    Libc.close(fd.Fd);
                }
            }
        }
    }

    /// <summary>
    /// Moves one thread of this process into the execution's groups (v1 <c>tasks</c> files are per thread): a process
    /// that thread forks is born inside them, so not one instruction of it runs unlimited. Undo with
    /// <see cref="ReturnThread"/>.
    /// </summary>
    public void AddThread(int tid)
    {
        var text = tid.ToString(CultureInfo.InvariantCulture);
        foreach (var dir in directories)
        {
            File.WriteAllText(Path.Combine(dir, "tasks"), text);
        }
    }

    /// <summary>Moves a thread back to the groups this process was started in.</summary>
    public static void ReturnThread(RuntimeOptions options, int tid)
    {
        var text = tid.ToString(CultureInfo.InvariantCulture);
        foreach (var controller in Controllers)
        {
            File.WriteAllText(Path.Combine(options.CgroupRoot, controller, HomeOf(controller).TrimStart('/'), "tasks"), text);
        }
    }

    /// <summary>Moves every thread of this process found in the execution's groups back home.</summary>
    public void ReturnOwnThreads()
    {
        // Threads move through all controllers together, so one controller's list finds them.
        foreach (var line in File.ReadLines(Path.Combine(Pids, "tasks")))
        {
            if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var tid) && Directory.Exists("/proc/self/task/" + line))
            {
                ReturnThread(Options, tid);
            }
        }
    }

    // This process's own group per controller, read once: "hierarchy-id:controller,controller:/path" lines.
    private static readonly Lazy<Dictionary<string, string>> Home = new(() =>
    {
        var home = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines("/proc/self/cgroup"))
        {
            var parts = line.Split(':', 3);
            if (parts.Length == 3)
            {
                foreach (var controller in parts[1].Split(','))
                {
                    home[controller] = parts[2];
                }
            }
        }

        return home;
    });

    private static string HomeOf(string controller) =>
        Home.Value.TryGetValue(controller, out var path) ? path : throw new InvalidOperationException($"this process has no cgroup v1 '{controller}' group");

    // SIGKILLed processes exit within microseconds unless the machine is very busy; the bound is the grace period.
    private static void WaitForExit(List<Libc.PollFd> fds, TimeSpan limit)
    {
        var deadline = Environment.TickCount64 + (long)Math.Ceiling(limit.TotalMilliseconds);
        var pending = fds.ToArray();
        while (pending.Length > 0)
        {
            var wait = deadline - Environment.TickCount64;
            if (wait <= 0 || Libc.poll(pending, (nuint)pending.Length, (int)wait) < 0)
            {
                return;
            }

            pending = [.. pending.Where(p => p.Revents == 0)];
        }
    }

    /// <summary>Whether any process is still in the group (any controller, any sub-group).</summary>
    public bool IsEmpty() => !AllPids().Any();

    /// <summary>Removes the group and any sub-groups runtimes made under it, deepest first.</summary>
    public void Remove()
    {
        foreach (var dir in directories)
        {
            if (!Directory.Exists(dir))
            {
                continue;
            }

            var all = new List<string>();
            try
            {
                all.AddRange(Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories));
            }
            catch (IOException)
            {
            }

            all.Sort((a, b) => b.Length.CompareTo(a.Length));
            all.Add(dir);
            foreach (var d in all)
            {
                // An exiting task can keep a group busy for a few milliseconds after SIGKILL.
                for (var attempt = 0; attempt < 200; attempt++)
                {
                    try
                    {
                        Directory.Delete(d);
                        break;
                    }
                    catch (DirectoryNotFoundException)
                    {
                        break;
                    }
                    catch (IOException)
                    {
                        Thread.Sleep(5);
                    }
                }
            }
        }
    }

    private IEnumerable<int> AllPids()
    {
        var seen = new HashSet<int>();
        foreach (var dir in directories)
        {
            if (!Directory.Exists(dir))
            {
                continue;
            }

            IEnumerable<string> groups;
            try
            {
                groups = [dir, .. Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories)];
            }
            catch (IOException)
            {
                continue;
            }

            foreach (var group in groups)
            {
                string[] lines;
                try
                {
                    lines = File.ReadAllLines(Path.Combine(group, "cgroup.procs"));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue;
                }

                foreach (var line in lines)
                {
                    if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && seen.Add(pid))
                    {
                        yield return pid;
                    }
                }
            }
        }
    }

    private static void TryWrite(string path, string value)
    {
        try
        {
            File.WriteAllText(path, value);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static long ReadLong(string path)
    {
        try
        {
            return ReadNumber(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    private static long ReadNumber(string text) =>
        long.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : 0;
}
