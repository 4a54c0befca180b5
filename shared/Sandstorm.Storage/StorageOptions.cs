namespace Sandstorm.Storage;

/// <summary>Where Sandstorm keeps its state (section <c>Sandstorm:Storage</c>).</summary>
public sealed class StorageOptions
{
    public const string Section = "Sandstorm:Storage";

    /// <summary>Prefix for every table and container, so several deployments (or tests) can share one account.</summary>
    public string Prefix { get; set; } = "";

    /// <summary>Payloads up to this size travel inline; larger ones go to Blob storage by reference.</summary>
    public int InlineLimitBytes { get; set; } = 16 * 1024;

    /// <summary>Storage queue that takes batch messages; malformed ones go to <c>{BatchQueue}-poison</c>.</summary>
    public string BatchQueue { get; set; } = "sandstorm-batches";

    public string TableName(string name) => Prefix + name;

    public string ContainerName(string name) => (Prefix + name).ToLowerInvariant();
}
