namespace Sandstorm.Runtimes.Internal;

/// <summary>The host command that starts one sandbox, and how the launcher prepares it.</summary>
internal sealed record Launch
{
    public required string Command { get; init; }

    public required IReadOnlyList<string> Arguments { get; init; }

    public required IReadOnlyDictionary<string, string> Environment { get; init; }

    public required string WorkingDirectory { get; init; }

    /// <summary>Stands for the descriptor number of <see cref="InheritedFile"/> among the arguments.</summary>
    public const string InheritedFd = "{inherited-fd}";

    /// <summary>File the command inherits open read-only (bwrap's <c>--seccomp FD</c>); see <see cref="InheritedFd"/>.</summary>
    public string? InheritedFile { get; init; }

    /// <summary>
    /// Host account the launcher switches to in the forked child before its first exec (instead of a
    /// <c>setpriv</c> exec of its own); null keeps this process's user.
    /// </summary>
    public string? UserName { get; init; }

    /// <summary>True when the command can start straight away: no limits or signals to arrange in a launcher first.</summary>
    public bool Direct => Ulimits.Count == 0 && !DieWithHost;

    /// <summary>SIGKILL the command when this process dies (PR_SET_PDEATHSIG), for runtimes with no such guard of their own.</summary>
    public bool DieWithHost { get; init; }

    /// <summary>Extra <c>ulimit</c> options applied by the launcher (e.g. <c>-f 262144</c>).</summary>
    public IReadOnlyList<string> Ulimits { get; init; } = [];
}
