namespace Sandstorm.Runtimes.Internal;

/// <summary>The host command that starts one sandbox, and how the launcher prepares it.</summary>
internal sealed record Launch
{
    public required string Command { get; init; }

    public required IReadOnlyList<string> Arguments { get; init; }

    public required IReadOnlyDictionary<string, string> Environment { get; init; }

    public required string WorkingDirectory { get; init; }

    /// <summary>File opened read-only as fd 3 of the command (bwrap's <c>--seccomp 3</c>).</summary>
    public string? Fd3File { get; init; }

    /// <summary>
    /// Host account the launcher switches to in the forked child before its first exec (instead of a
    /// <c>setpriv</c> exec of its own); null keeps this process's user.
    /// </summary>
    public string? UserName { get; init; }

    /// <summary>SIGKILL the command when this process dies (PR_SET_PDEATHSIG), for runtimes with no such guard of their own.</summary>
    public bool DieWithHost { get; init; }

    /// <summary>Extra <c>ulimit</c> options applied by the launcher (e.g. <c>-f 262144</c>).</summary>
    public IReadOnlyList<string> Ulimits { get; init; } = [];
}
