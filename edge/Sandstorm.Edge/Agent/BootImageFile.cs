using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Edge.Agent;

/// <summary>
/// The bootable image this machine was booted from, for the heartbeat: the first readable, well-formed file among
/// <c>$SANDSTORM_EDGE_IMAGE_FILE</c> (':'-separated; BootKit's units set it), else the paths BootKit images use — the file
/// a bootc host writes at start from <c>bootc status</c>, then the one BootKit puts in the image. Null when none.
/// </summary>
public static class BootImageFile
{
    public const string EnvironmentVariable = "SANDSTORM_EDGE_IMAGE_FILE";

    private static readonly string[] DefaultPaths = ["/run/sandstorm/bootkit-image.json", "/usr/lib/sandstorm/bootkit-image.json"];

    private static readonly Lazy<EdgeBootImage?> Read = new(() => ReadFrom(
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } list ? list.Split(':', StringSplitOptions.RemoveEmptyEntries) : DefaultPaths));

    /// <summary>The image, read once per process.</summary>
    public static EdgeBootImage? Current => Read.Value;

    /// <summary>The image from the first of <paramref name="paths"/> that holds a well-formed one.</summary>
    public static EdgeBootImage? ReadFrom(IEnumerable<string> paths)
    {
        foreach (var path in paths)
        {
            try
            {
                if (File.Exists(path) && JsonSerializer.Deserialize<EdgeBootImage>(File.ReadAllText(path), SandstormJson.Options) is { } image
                    && image.Name is not null && image.Digest is not null && EdgeBootImage.Problem(image) is null)
                {
                    return image;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
            {
                // An unreadable or malformed file says nothing about the image: try the next.
            }
        }

        return null;
    }
}
