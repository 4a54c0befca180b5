namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// Where executions keep their state under the work root, and the removal steps shared by an execution's own clean-up
/// and the sweep of what dead processes left (<see cref="Orphans"/>).
/// </summary>
internal static class WorkRootPaths
{
    /// <summary>Owner records, one file per execution (see <see cref="Orphans"/>).</summary>
    public static string OwnersRoot(RuntimeOptions options) => Path.Combine(options.WorkRoot, "owners");

    public static string ScratchRoot(RuntimeOptions options) => Path.Combine(options.WorkRoot, "scratch");

    public static string BundlesRoot(RuntimeOptions options) => Path.Combine(options.WorkRoot, "bundles");

    public static string Bundle(RuntimeOptions options, string id) => Path.Combine(BundlesRoot(options), id);

    public static string RuncStateRoot(RuntimeOptions options) => Path.Combine(options.WorkRoot, "runc-state");

    public static string RunscStateRoot(RuntimeOptions options) => Path.Combine(options.WorkRoot, "runsc-state");

    public static void DeleteDirectory(string? path)
    {
        if (path is not null && Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }

    /// <summary>
    /// Removes runsc's record of sandbox <paramref name="id"/> (its entries named <c>&lt;id&gt;_*</c>): what
    /// <c>runsc delete</c> removes once the sandbox's processes are gone, without starting the runsc binary.
    /// </summary>
    public static void DeleteRunscState(RuntimeOptions options, string id)
    {
        var root = RunscStateRoot(options);
        if (!Directory.Exists(root))
        {
            return;
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries(root, id + "_*"))
        {
            if (Directory.Exists(entry))
            {
                Directory.Delete(entry, recursive: true);
            }
            else
            {
                File.Delete(entry);
            }
        }
    }
}
