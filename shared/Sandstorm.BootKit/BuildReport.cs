namespace Sandstorm.BootKit;

/// <summary>What <c>sandstorm bootkit build</c> made (<c>report.json</c> in the output folder).</summary>
public sealed record BuildReport
{
    /// <summary>The image's name (<c>--name</c>), as agents booted from it report it.</summary>
    public required string Name { get; init; }

    /// <summary>
    /// The image's digest, <c>sha256:…</c>: a hash over the root file system's manifest (every path, type, mode, owner and
    /// content, in order), the same the agents booted from it report. Null when no disk image was built.
    /// </summary>
    public string? Digest { get; init; }

    public required string Base { get; init; }

    public required string Suite { get; init; }

    /// <summary>The bootc base image of the Containerfile.</summary>
    public required string BootcBase { get; init; }

    /// <summary>Files made, relative to the output folder, with their size in bytes and sha256.</summary>
    public required IReadOnlyList<BuildArtifact> Artifacts { get; init; }

    /// <summary>Installed Debian packages (<c>name=version</c>); empty without a disk image.</summary>
    public IReadOnlyList<string> Packages { get; init; } = [];

    /// <summary>Size of the root file system in bytes; null without a disk image.</summary>
    public long? RootSizeBytes { get; init; }

    public required double BuildSeconds { get; init; }

    /// <summary>Why there is no disk image and netboot bundle (null when they were built).</summary>
    public string? ImageSkipped { get; init; }

    /// <summary>Things the reader must know: Containerfile steps that will not run on the bootc base, and similar.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>One file of the build's output.</summary>
public sealed record BuildArtifact(string Path, long Bytes, string Sha256);
