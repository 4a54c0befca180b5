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

    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = OwnerOnlyFile | UnixFileMode.UserExecute;

    /// <summary>Creates the outbox (and its dead letters) owner-only; an existing one, and every item in it, is made so.</summary>
    /// <remarks>Results hold the tenants' outputs: no other user of the machine may read them.</remarks>
    public Outbox(string directory)
    {
        Directory = directory;
        foreach (var dir in new[] { directory, DeadDirectory })
        {
            System.IO.Directory.CreateDirectory(dir, OwnerOnlyDirectory);
            File.SetUnixFileMode(dir, OwnerOnlyDirectory);
            foreach (var file in System.IO.Directory.EnumerateFiles(dir))
            {
                File.SetUnixFileMode(file, OwnerOnlyFile);
            }
        }

        // A crash mid-write leaves only a temp file, never a half-written item: drop them.
        foreach (var temp in System.IO.Directory.EnumerateFiles(directory, ".*.tmp"))
        {
            File.Delete(temp);
        }
    }

    /// <summary>
    /// True when <paramref name="id"/> can be part of a file name as it is: letters, digits, '.', '_', ':', '-', not
    /// starting with a dot, at most 200 characters. Job ids come from the control plane; a '/' or '..' in one would
    /// otherwise put the file elsewhere (.NET resolves '..' in a path before the kernel sees it).
    /// </summary>
    public static bool IsValidId(string? id) =>
        id is { Length: > 0 and <= 200 } && id[0] != '.' && !id.Contains("..", StringComparison.Ordinal)
        && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or ':' or '-');

    public string Directory { get; }

    /// <summary>Items the control plane refused outright (4xx): kept for inspection, never retried.</summary>
    public string DeadDirectory => Path.Combine(Directory, "dead");

    /// <summary>Stores an item; <paramref name="id"/> is the job id of a result or a batch id of telemetry.</summary>
    public async Task<OutboxItem> AddAsync(string kind, string id, string json, CancellationToken ct)
    {
        if (!IsValidId(id) || kind is not (ResultKind or TelemetryKind))
        {
            throw new ArgumentException($"'{id}' is not a valid outbox item id (letters, digits, '.', '_', ':', '-'; no '..')", nameof(id));
        }

        // Names sort in the order items were added (time, then a per-process sequence), so results go out in order.
        var name = $"{DateTime.UtcNow.Ticks:D19}-{Interlocked.Increment(ref _sequence):D6}-{kind}-{id}.json";
        var temp = Path.Combine(Directory, $".{name}.tmp");
        var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = OwnerOnlyFile };
        await using (var stream = new FileStream(temp, create))
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
        File.SetUnixFileMode(target + ".reason", OwnerOnlyFile);
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
