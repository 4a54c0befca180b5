namespace Sandstorm.Storage;

/// <summary>Text that travels inline when small, or as a reference to a blob when large.</summary>
public sealed record Payload(string? Inline, string? BlobName, long Length)
{
    public static Payload Empty { get; } = new("", null, 0);

    public bool IsInline => BlobName is null;
}
