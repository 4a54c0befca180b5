namespace Sandstorm.Runtimes.Internal;

/// <summary>The host command that starts one sandbox, and how the launcher prepares it.</summary>
internal sealed record Launch
{
    public required string Command { get; init; }

    public required IReadOnlyList<string> Arguments { get; init; }

    public required IReadOnlyDictionary<string, string> Environment { get; init; }

    public required string WorkingDirectory { get; init; }

    /// <summary>Stands for the descriptor number of the first of <see cref="InheritedFiles"/> among the arguments.</summary>
    public const string InheritedFd = "{inherited-fd}";

    /// <summary>
    /// Files the command inherits open read-only, in order (bwrap's <c>--seccomp FD</c>, <c>--args FD</c>,
    /// <c>--file FD DEST</c>): <see cref="InheritedFdOf"/> among the arguments stands for the descriptor of each. Handing
    /// over descriptors rather than paths lets a command that starts as another user read files it could not open.
    /// </summary>
    public IReadOnlyList<string> InheritedFiles { get; init; } = [];

    /// <summary>Stands for the descriptor number of <c>InheritedFiles[index]</c> among the arguments.</summary>
    public static string InheritedFdOf(int index) => index == 0 ? InheritedFd : "{inherited-fd:" + index.ToString(System.Globalization.CultureInfo.InvariantCulture) + "}";

    /// <summary>
    /// Host account the launcher switches to in the forked child before its first exec (instead of a
    /// <c>setpriv</c> exec of its own); null keeps this process's user.
    /// </summary>
    public string? UserName { get; init; }

    /// <summary>True when the command can start straight away: no limits or signals to arrange in a launcher first.</summary>
    public bool Direct => Ulimits.Count == 0 && !DieWithHost;

    /// <summary>SIGKILL the command when this process dies (PR_SET_PDEATHSIG), for runtimes with no such guard of their own.</summary>
    public bool DieWithHost { get; init; }

    /// <summary>
    /// True when the command's own pid namespace ends every process of the sandbox with its first (bwrap's
    /// <c>--as-pid-1</c> and <c>--die-with-parent</c>): without cgroups it then needs no session of its own to be killed whole.
    /// </summary>
    public bool EndsWholeTree { get; init; }

    /// <summary>Extra <c>ulimit</c> options applied by the launcher (e.g. <c>-f 262144</c>).</summary>
    public IReadOnlyList<string> Ulimits { get; init; } = [];
}
