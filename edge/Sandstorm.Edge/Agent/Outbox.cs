namespace Sandstorm.Edge.Agent;

/// <summary>
/// Results and telemetry waiting for the control plane's acknowledgement: one JSON file each, written atomically
/// (temp file, flush to disk, rename), deleted only after a 2xx. Survives restarts and long disconnections; the control
/// plane applies each result once by job id and each event once by event id, so delivering twice is harmless.
/// </summary>
public sealed class Outbox
{
    public const string ResultKind = "result";
    public const string TelemetryKind = "telemetry";

    private long _sequence;

    public Outbox(string directory)
    {
        Directory = directory;
        System.IO.Directory.CreateDirectory(directory);
        System.IO.Directory.CreateDirectory(DeadDirectory);

        // A crash mid-write leaves only a temp file, never a half-written item: drop them.
        foreach (var temp in System.IO.Directory.EnumerateFiles(directory, ".*.tmp"))
        {
            File.Delete(temp);
        }
    }

    public string Directory { get; }

    /// <summary>Items the control plane refused outright (4xx): kept for inspection, never retried.</summary>
    public string DeadDirectory => Path.Combine(Directory, "dead");

    /// <summary>Stores an item; <paramref name="id"/> is the job id of a result or a batch id of telemetry.</summary>
    public async Task<OutboxItem> AddAsync(string kind, string id, string json, CancellationToken ct)
    {
        // Names sort in the order items were added (time, then a per-process sequence), so results go out in order.
        var name = $"{DateTime.UtcNow.Ticks:D19}-{Interlocked.Increment(ref _sequence):D6}-{kind}-{id}.json";
        var temp = Path.Combine(Directory, $".{name}.tmp");
        await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        {
            await using var writer = new StreamWriter(stream);
            await writer.WriteAsync(json.AsMemory(), ct);
            await writer.FlushAsync(ct);
            stream.Flush(flushToDisk: true);
        }

        var path = Path.Combine(Directory, name);
        File.Move(temp, path);
        return OutboxItem.From(path);
    }

    /// <summary>Undelivered items, oldest first.</summary>
    public IReadOnlyList<OutboxItem> Pending() =>
        [.. System.IO.Directory.EnumerateFiles(Directory, "*.json").Order(StringComparer.Ordinal).Select(OutboxItem.From)];

    public static Task<string> ReadAsync(OutboxItem item, CancellationToken ct) => File.ReadAllTextAsync(item.Path, ct);

    /// <summary>Acknowledged: the item is gone for good.</summary>
    public static void Delete(OutboxItem item) => File.Delete(item.Path);

    /// <summary>Refused by the control plane: moved aside with the reason beside it.</summary>
    public void Reject(OutboxItem item, string reason)
    {
        var target = Path.Combine(DeadDirectory, Path.GetFileName(item.Path));
        File.Move(item.Path, target, overwrite: true);
        File.WriteAllText(target + ".reason", reason);
    }
}

/// <summary>One outbox file: its kind (result, telemetry) and id, parsed from its name.</summary>
public sealed record OutboxItem(string Path, string Kind, string Id)
{
    public static OutboxItem From(string path)
    {
        // <ticks>-<seq>-<kind>-<id>.json; ids may contain '-'.
        var parts = System.IO.Path.GetFileNameWithoutExtension(path).Split('-', 4);
        return parts.Length == 4 ? new OutboxItem(path, parts[2], parts[3]) : new OutboxItem(path, "unknown", "");
    }
}
