using System.Text.RegularExpressions;

namespace Sandstorm.BootKit;

/// <summary>
/// Maps a Dockerfile's <c>FROM</c> to the Debian or Ubuntu suite BootKit builds from (no registry is pulled: the image's
/// packages come from the distribution's own archive). Only the releases below are known; anything else is refused.
/// </summary>
public static partial class BaseImages
{
    private static readonly Dictionary<string, (string Distribution, string Suite)> Known = new(StringComparer.Ordinal)
    {
        ["debian:12"] = ("debian", "bookworm"),
        ["debian:bookworm"] = ("debian", "bookworm"),
        ["debian:13"] = ("debian", "trixie"),
        ["debian:trixie"] = ("debian", "trixie"),
        ["ubuntu:22.04"] = ("ubuntu", "jammy"),
        ["ubuntu:jammy"] = ("ubuntu", "jammy"),
        ["ubuntu:24.04"] = ("ubuntu", "noble"),
        ["ubuntu:noble"] = ("ubuntu", "noble"),
    };

    /// <summary>The images BootKit accepts, for error messages and docs.</summary>
    public static IReadOnlyList<string> Supported { get; } = [.. Known.Keys];

    /// <summary>The suite of <paramref name="image"/>, or null with the reason it cannot be mapped.</summary>
    public static (BaseSuite? Suite, string? Problem) Map(string image)
    {
        if (image.Contains('@', StringComparison.Ordinal))
        {
            return (null, $"base image '{image}' is pinned by registry digest, which cannot be honoured: BootKit builds from the distribution's archive, not a registry");
        }

        var name = image.ToLowerInvariant();
        foreach (var prefix in (string[])["docker.io/library/", "docker.io/", "library/"])
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                name = name[prefix.Length..];
                break;
            }
        }

        var supported = $"one of {string.Join(", ", Supported)} (optionally -slim)";
        if (!name.Contains(':', StringComparison.Ordinal) || name.EndsWith(":latest", StringComparison.Ordinal))
        {
            return (null, $"base image '{image}' names no release ('latest' moves): use {supported}");
        }

        // debian:12-slim, debian:12.8, debian:bookworm-slim, debian:bookworm-20241202 → the release itself.
        var match = TagPattern().Match(name);
        var key = match.Success ? $"{match.Groups["repo"].Value}:{match.Groups["release"].Value}" : name;
        return Known.TryGetValue(key, out var known)
            ? (new BaseSuite(image, known.Distribution, known.Suite), null)
            : (null, $"base image '{image}' cannot be mapped to a Debian or Ubuntu suite: use {supported}");
    }

    [GeneratedRegex(@"^(?<repo>debian|ubuntu):(?<release>12|13|bookworm|trixie|22\.04|24\.04|jammy|noble)(?:\.\d+)*(?:-slim)?(?:-\d{8})?$")]
    private static partial Regex TagPattern();
}
