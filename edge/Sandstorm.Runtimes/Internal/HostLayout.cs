namespace Sandstorm.Runtimes.Internal;

/// <summary>
/// How the host's system directories are exposed read-only inside a sandbox. On merged-/usr systems /bin, /lib,
/// /lib64 and /sbin are symlinks into /usr and are recreated as symlinks; only /usr and a few /etc files are bound.
/// </summary>
internal static class HostLayout
{
    /// <summary>Top-level directories that are either bound read-only or symlinked.</summary>
    public static IReadOnlyList<string> SystemDirectories { get; } = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"];

    /// <summary>Host /etc entries the interpreters need (dynamic loader cache, alternatives, time zone); nothing secret.</summary>
    public static IReadOnlyList<string> EtcEntries { get; } = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime", "/etc/nsswitch.conf"];

    /// <summary>Symlink target when <paramref name="path"/> is a symlink (e.g. <c>usr/bin</c> for /bin), else null.</summary>
    public static string? LinkTarget(string path)
    {
        var info = new DirectoryInfo(path);
        return info.Exists || info.LinkTarget is not null ? info.LinkTarget : null;
    }

    /// <summary>
    /// A directory with a minimal /etc/passwd and /etc/group (only root and nobody), shared by all sandboxes:
    /// the host's own account names are none of the sandbox's business.
    /// </summary>
    public static string EtcTemplate(RuntimeOptions options)
    {
        var etc = Path.Combine(options.WorkRoot, "template", "etc");
        var passwd = Path.Combine(etc, "passwd");
        if (!File.Exists(passwd))
        {
            Directory.CreateDirectory(etc);
            WriteAtomically(Path.Combine(etc, "group"), $"root:x:0:\nnogroup:x:{options.SandboxGid}:\n");
            WriteAtomically(Path.Combine(etc, "hosts"), "127.0.0.1 localhost sandbox\n::1 localhost\n");
            WriteAtomically(passwd, $"root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:{options.SandboxUid}:{options.SandboxGid}:nobody:/scratch:/usr/sbin/nologin\n");
        }

        return etc;
    }

    /// <summary>
    /// The /etc of a kept sandbox: the same, but the sandbox user is <c>user</c> with its home at <c>/home/user</c> and a
    /// shell, as agents written for E2B expect (<c>whoami</c>, <c>~</c>).
    /// </summary>
    public static string KeptEtcTemplate(RuntimeOptions options)
    {
        var etc = Path.Combine(options.WorkRoot, "template", "etc-kept");
        var passwd = Path.Combine(etc, "passwd");
        if (!File.Exists(passwd))
        {
            Directory.CreateDirectory(etc);
            WriteAtomically(Path.Combine(etc, "group"), $"root:x:0:\n{KeptSandbox.User}:x:{options.SandboxGid}:\n");
            WriteAtomically(Path.Combine(etc, "hosts"), "127.0.0.1 localhost sandbox\n::1 localhost\n");
            WriteAtomically(passwd, $"root:x:0:0:root:/root:/usr/sbin/nologin\n{KeptSandbox.User}:x:{options.SandboxUid}:{options.SandboxGid}:{KeptSandbox.User}:{KeptSandbox.Home}:/bin/bash\n");
        }

        return etc;
    }

    /// <summary>The /etc template of the sandbox <paramref name="context"/> runs.</summary>
    public static string EtcFor(SandboxContext context) => context.Kept ? KeptEtcTemplate(context.Options) : EtcTemplate(context.Options);

    /// <summary>
    /// Name of the host account with exactly this uid and primary gid (e.g. <c>nobody</c>), or null. .NET switches a
    /// child to an account by name, taking the primary group (and that account's groups) from the user database.
    /// </summary>
    public static string? AccountName(int uid, int gid)
    {
        try
        {
            foreach (var line in File.ReadLines("/etc/passwd"))
            {
                var fields = line.Split(':');
                if (fields.Length >= 4
                    && fields[2] == uid.ToString(System.Globalization.CultureInfo.InvariantCulture)
                    && fields[3] == gid.ToString(System.Globalization.CultureInfo.InvariantCulture))
                {
                    return fields[0];
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }

    /// <summary>Writes via a temporary file and rename so concurrent first uses never see a half-written file.</summary>
    public static void WriteAtomically(string path, string content)
    {
        var temp = path + "." + Environment.ProcessId + ".tmp";
        File.WriteAllText(temp, content);
        File.Move(temp, path, overwrite: true);
    }
}
