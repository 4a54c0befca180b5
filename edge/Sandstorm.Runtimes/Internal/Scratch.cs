using System.Text;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// The per-execution working directory that becomes <c>/scratch</c>. As root it is a size-capped tmpfs so code
/// cannot fill the host's disk; elsewhere a plain directory.
/// </summary>
internal sealed class Scratch
{
    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    private Scratch(string path, bool mounted)
    {
        HostPath = path;
        Mounted = mounted;
    }

    public string HostPath { get; }

    public bool Mounted { get; }

    public static Scratch Create(RuntimeOptions options, string id, ExecutionSpec spec, bool ownedBySandboxUser)
    {
        var scratch = CreateEmpty(options, id, ownedBySandboxUser);
        try
        {
            scratch.Populate(options, spec, ownedBySandboxUser);
            return scratch;
        }
        catch
        {
            scratch.Remove();
            throw;
        }
    }

    /// <summary>The scratch of an execution that may exist from before (to remove it).</summary>
    public static Scratch Existing(RuntimeOptions options, string id) => new(Path.Combine(WorkRootPaths.ScratchRoot(options), id), mounted: true);

    /// <summary>An empty, size-capped scratch directory (a tmpfs when running as root).</summary>
    public static Scratch CreateEmpty(RuntimeOptions options, string id, bool ownedBySandboxUser, int? sizeMiB = null)
    {
        var root = WorkRootPaths.ScratchRoot(options);
        Directory.CreateDirectory(root);
        var path = Path.Combine(root, id);
        Directory.CreateDirectory(path);
        var mounted = false;
        if (Libc.IsRoot)
        {
            var owner = ownedBySandboxUser ? $",uid={options.SandboxUid},gid={options.SandboxGid}" : "";
            mounted = Libc.mount("tmpfs", path, "tmpfs", Libc.MS_NOSUID | Libc.MS_NODEV, $"size={sizeMiB ?? options.ScratchSizeMiB}m,mode=0755{owner}") == 0;
        }

        return new Scratch(path, mounted);
    }

    /// <summary>Writes the main file and the extra files; the caller removes the scratch if this throws.</summary>
    public void Populate(RuntimeOptions options, ExecutionSpec spec, bool ownedBySandboxUser)
    {
        var main = Path.Combine(HostPath, Languages.MainFile(spec.Language));
        File.WriteAllText(main, spec.Code, Utf8NoBom);
        if (spec.Files is not null)
        {
            foreach (var (name, content) in spec.Files)
            {
                var target = ResolveInside(HostPath, name);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.WriteAllText(target, content, Utf8NoBom);
            }
        }

        if (ownedBySandboxUser && Libc.IsRoot)
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(HostPath, "*", SearchOption.AllDirectories).Prepend(HostPath))
            {
                Libc.chown(entry, options.SandboxUid, options.SandboxGid);
            }
        }
    }

    public void Remove()
    {
        if (Mounted)
        {
            Libc.umount2(HostPath, Libc.MNT_DETACH);
        }

        try
        {
            Directory.Delete(HostPath, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Files made read-only by the sandboxed code: make the tree writable and retry once.
            foreach (var entry in Directory.EnumerateFileSystemEntries(HostPath, "*", SearchOption.AllDirectories))
            {
                try
                {
                    File.SetUnixFileMode(entry, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                }
                catch (Exception inner) when (inner is IOException or UnauthorizedAccessException)
                {
                }
            }

            Directory.Delete(HostPath, recursive: true);
        }
    }

    private static string ResolveInside(string root, string relative)
    {
        if (string.IsNullOrWhiteSpace(relative) || Path.IsPathRooted(relative))
        {
            throw new ArgumentException($"file name '{relative}' must be a relative path", nameof(relative));
        }

        var full = Path.GetFullPath(Path.Combine(root, relative));
        if (!full.StartsWith(root + "/", StringComparison.Ordinal))
        {
            throw new ArgumentException($"file name '{relative}' escapes the scratch directory", nameof(relative));
        }

        return full;
    }
}
