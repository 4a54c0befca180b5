namespace Sandstorm.Core.Contracts;

/// <summary>The run request's <c>deployment</c> values and the <c>bootcImage</c> references that go with them.</summary>
public static class Deployments
{
    /// <summary>Only on edge agents booted from the request's <c>bootcImage</c> (a BootKit or bootc image).</summary>
    public const string BareMetal = "bare-metal";

    /// <summary>Why <paramref name="reference"/> (<c>name</c> or <c>name@sha256:…</c>) is malformed; null when it is well formed.</summary>
    public static string? ImageProblem(string reference)
    {
        var (name, digest) = Split(reference);
        return EdgeBootImage.Problem(new EdgeBootImage(name, digest ?? new string('0', 64).Insert(0, "sha256:"))) is null
            ? null
            : "bootcImage is an image name (1-256 characters, no spaces), optionally followed by @sha256: and 64 lower-case hex digits";
    }

    /// <summary>The name and, when pinned, the digest of an image reference.</summary>
    public static (string Name, string? Digest) Split(string reference)
    {
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        return at < 0 ? (reference, null) : (reference[..at], reference[(at + 1)..]);
    }

    /// <summary>True when <paramref name="image"/> is the one <paramref name="reference"/> names: same name, and same digest when it is pinned.</summary>
    public static bool Matches(string reference, EdgeBootImage? image)
    {
        if (image is null)
        {
            return false;
        }

        var (name, digest) = Split(reference);
        return string.Equals(name, image.Name, StringComparison.Ordinal) && (digest is null || string.Equals(digest, image.Digest, StringComparison.Ordinal));
    }
}
