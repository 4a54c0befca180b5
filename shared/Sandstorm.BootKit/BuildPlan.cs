namespace Sandstorm.BootKit;

/// <summary>The Debian or Ubuntu suite a Dockerfile's <c>FROM</c> maps to.</summary>
/// <param name="Image">The image as written in the Dockerfile.</param>
/// <param name="Distribution"><c>debian</c> or <c>ubuntu</c>.</param>
/// <param name="Suite">The suite's code name (bookworm, trixie, jammy, noble).</param>
public sealed record BaseSuite(string Image, string Distribution, string Suite);

/// <summary>One step that changes the image's file system or its build state, with the Dockerfile line it came from.</summary>
public abstract record BuildStep(int Line);

/// <summary><c>RUN</c>: a command run inside the image as <see cref="User"/> in <see cref="WorkingDirectory"/> with <see cref="Environment"/>.</summary>
public sealed record RunStep(int Line, IReadOnlyList<string> Argv, string User, string WorkingDirectory, IReadOnlyDictionary<string, string> Environment)
    : BuildStep(Line);

/// <summary>
/// <c>COPY</c>/<c>ADD</c> of files inside the build context: each source relative to the context (checked to stay inside
/// it, symlinks included) copied to <see cref="Destination"/> (absolute).
/// </summary>
public sealed record CopyStep(int Line, IReadOnlyList<string> Sources, string Destination, string? Chown, string? Chmod)
    : BuildStep(Line)
{
    /// <summary>True when the destination names a directory (ends in '/' or there is more than one source).</summary>
    public bool DestinationIsDirectory => Destination.EndsWith('/') || Sources.Count > 1;
}

/// <summary><c>WORKDIR</c>: the directory is created in the image.</summary>
public sealed record WorkdirStep(int Line, string Path) : BuildStep(Line);

/// <summary>A port the image's service listens on (<c>EXPOSE</c>).</summary>
public sealed record ExposedPort(int Port, string Protocol);

/// <summary>
/// The program the image runs (<c>ENTRYPOINT</c> + <c>CMD</c> as Docker combines them), as a systemd service with the
/// image's final environment, working directory and user.
/// </summary>
public sealed record ServiceSpec(int Line, IReadOnlyList<string> Argv, string User, string WorkingDirectory, IReadOnlyDictionary<string, string> Environment);

/// <summary>What a Dockerfile asks for, in a form BootKit can build a bootable image from.</summary>
public sealed record BuildPlan
{
    public required BaseSuite Base { get; init; }

    /// <summary>The steps in Dockerfile order.</summary>
    public required IReadOnlyList<BuildStep> Steps { get; init; }

    /// <summary>The final environment (<c>ENV</c>).</summary>
    public required IReadOnlyDictionary<string, string> Environment { get; init; }

    /// <summary>The final working directory (<c>/</c> when none is set).</summary>
    public required string WorkingDirectory { get; init; }

    /// <summary>The final user (<c>root</c> when none is set).</summary>
    public required string User { get; init; }

    public required IReadOnlyList<ExposedPort> Ports { get; init; }

    /// <summary>The image's program; null when the Dockerfile has neither <c>CMD</c> nor <c>ENTRYPOINT</c>.</summary>
    public ServiceSpec? Service { get; init; }

    /// <summary>The build context: the folder the <c>COPY</c> sources are relative to (full path).</summary>
    public required string Context { get; init; }
}
