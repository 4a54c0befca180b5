using System.Collections.Concurrent;
using System.Globalization;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// What a process that died without cleaning up (SIGKILL, power loss of the agent) left of its executions: cgroups,
/// scratch mounts, bundles, runc and runsc state. Each execution records its owner — <c>owners/&lt;id&gt;</c> under the work root, holding the
/// owner's pid and cgroup parent — from before its cgroup exists until its clean-up succeeded. The first execution of a
/// process in a work root sweeps the executions of owners that are gone: their sandboxes died with them (parent-death
/// signals), so what is left is state. A live owner's executions are never touched (a recycled pid only delays a sweep).
/// </summary>
internal static class Orphans
{
    private static readonly ConcurrentDictionary<string, Lazy<Task>> Swept = new(StringComparer.Ordinal);

    /// <summary>Records this process as the owner of execution <paramref name="id"/>.</summary>
    public static void Claim(RuntimeOptions options, string id)
    {
        var owners = WorkRootPaths.OwnersRoot(options);
        Directory.CreateDirectory(owners);
        File.WriteAllText(Path.Combine(owners, id), Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n" + options.CgroupParent + "\n");
    }

    /// <summary>Forgets the owner of an execution whose clean-up succeeded.</summary>
    public static void Release(RuntimeOptions options, string id) => File.Delete(Path.Combine(WorkRootPaths.OwnersRoot(options), id));

    /// <summary>Sweeps the work root once per process (later calls await the same sweep); never throws.</summary>
    public static Task SweepOnceAsync(RuntimeOptions options) =>
        Swept.GetOrAdd(options.WorkRoot + "|" + options.CgroupParent, _ => new Lazy<Task>(async () =>
        {
            try
            {
                await SweepAsync(options);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Best effort: the work root changed under the sweep; executions go on.
            }
        })).Value;

    /// <summary>
    /// Removes what the executions of dead owners left, and execution state in the work root that has no owner record at
    /// all (left by a version from before the records: a record is written before any state and removed after all of
    /// it); returns how many executions were swept.
    /// </summary>
    public static async Task<int> SweepAsync(RuntimeOptions options)
    {
        var owners = WorkRootPaths.OwnersRoot(options);
        var swept = 0;
        foreach (var file in Directory.Exists(owners) ? Directory.EnumerateFiles(owners) : [])
        {
            try
            {
                var lines = File.ReadAllLines(file);
                if (lines.Length < 2 || !int.TryParse(lines[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                    || pid == Environment.ProcessId || Directory.Exists($"/proc/{pid}") || lines[1] != options.CgroupParent)
                {
                    // Alive, ours, or another configuration's: not ours to judge.
                    continue;
                }

                await RemoveAsync(options, Path.GetFileName(file));
                File.Delete(file);
                swept++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Left for the next sweep; an execution's own clean-up failing is reported by that execution.
            }
        }

        // Only ids found in this work root's own directories: a cgroup parent may be shared with other work roots.
        foreach (var id in StateIds(options).Where(id => !File.Exists(Path.Combine(owners, id))))
        {
            try
            {
                await RemoveAsync(options, id);
                swept++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return swept;
    }

    private static async Task RemoveAsync(RuntimeOptions options, string id)
    {
        var cgroup = SandboxCgroup.Existing(options, id);
        await cgroup.KillAllAsync(options.KillGrace, options.TimeProvider);
        cgroup.Remove();
        Scratch.Existing(options, id).Remove();
        Scratch.Existing(options, id + Scratch.RootSuffix).Remove();
        WorkRootPaths.DeleteDirectory(WorkRootPaths.Bundle(options, id));
        WorkRootPaths.DeleteDirectory(Path.Combine(WorkRootPaths.RuncStateRoot(options), id));
        WorkRootPaths.DeleteRunscState(options, id);
    }

    // Execution ids with state in the work root: scratch, bundles and runc state are named by id, runsc's entries <id>_*.
    private static HashSet<string> StateIds(RuntimeOptions options)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var root in new[] { WorkRootPaths.ScratchRoot(options), WorkRootPaths.BundlesRoot(options), WorkRootPaths.RuncStateRoot(options) })
        {
            if (Directory.Exists(root))
            {
                // An execution's private root (scratch/<id>.root) is its state too.
                ids.UnionWith(Directory.EnumerateDirectories(root).Select(d => Path.GetFileName(d).Replace(Scratch.RootSuffix, "", StringComparison.Ordinal)));
            }
        }

        var runsc = WorkRootPaths.RunscStateRoot(options);
        if (Directory.Exists(runsc))
        {
            ids.UnionWith(Directory.EnumerateFileSystemEntries(runsc, "*_*").Select(e => Path.GetFileName(e).Split('_')[0]));
        }

        return ids;
    }
}
