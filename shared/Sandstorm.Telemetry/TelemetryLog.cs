using System.Globalization;
using System.IO.Compression;
using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;

namespace Sandstorm.Telemetry;

/// <summary>A durable, append-only log of telemetry batches (each batch is whole JSON lines).</summary>
public interface ITelemetryLog
{
    /// <summary>Appends one batch durably; returns once the store acknowledged it.</summary>
    Task AppendAsync(ReadOnlyMemory<byte> batch, CancellationToken cancellationToken);

    /// <summary>Every event stored for the hours overlapping [<paramref name="from"/>, <paramref name="to"/>), oldest hour first.</summary>
    IAsyncEnumerable<TelemetryEvent> ReadAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken);
}

/// <summary>Splits batches into JSON lines and parses them.</summary>
public static class TelemetryLines
{
    /// <summary>The events of whole JSON lines (a trailing partial line is ignored).</summary>
    public static List<TelemetryEvent> Parse(ReadOnlySpan<byte> lines)
    {
        var list = new List<TelemetryEvent>();
        while (lines.Length > 0)
        {
            var end = lines.IndexOf((byte)'\n');
            if (end < 0)
            {
                break;
            }

            if (end > 0 && JsonSerializer.Deserialize(lines[..end], TelemetryJson.Default.TelemetryEvent) is { } e)
            {
                list.Add(e);
            }

            lines = lines[(end + 1)..];
        }

        return list;
    }

    /// <summary>The events of one or more appended batches as stored: gzip members (<c>.jsonl.gz</c> blobs) or plain lines.</summary>
    public static List<TelemetryEvent> ParseStored(ReadOnlyMemory<byte> stored, bool compressed)
    {
        if (!compressed)
        {
            return Parse(stored.Span);
        }

        // Concatenated gzip members (one per append) decode as one stream.
        using var gzip = new GZipStream(new MemoryStream(stored.ToArray(), writable: false), CompressionMode.Decompress);
        using var plain = new MemoryStream();
        gzip.CopyTo(plain);
        return Parse(plain.GetBuffer().AsSpan(0, (int)plain.Length));
    }

    /// <summary>One batch of JSON lines compressed as one gzip member (fastest level: ~5-8× fewer bytes to store and read).</summary>
    public static byte[] Compress(ReadOnlySpan<byte> lines)
    {
        using var output = new MemoryStream(lines.Length / 4);
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(lines);
        }

        return output.ToArray();
    }

    /// <summary>Appends one event as a JSON line.</summary>
    public static void Write(Utf8JsonWriter writer, Stream sink, TelemetryEvent e)
    {
        writer.Reset(sink);
        JsonSerializer.Serialize(writer, e, TelemetryJson.Default.TelemetryEvent);
        writer.Flush();
        sink.WriteByte((byte)'\n');
    }
}

/// <summary>
/// The log as append blobs: one blob per writer and hour (<c>yyyy/MM/dd/HH/{writer}-{n}.jsonl</c>), each batch one append
/// block (up to 4 MiB; larger batches are split at line boundaries), so one store round trip carries thousands of events.
/// Writers never share a blob, so appends need no coordination and scale out with writers; a blob rolls over before the
/// store's 50,000-block limit. Readers list an hour's blobs and read them, or tail them by offset (<see cref="TelemetryTail"/>).
/// Works on Azurite and on an Azure storage account (identity-based access through the registered <see cref="BlobServiceClient"/>).
/// </summary>
public sealed class AppendBlobTelemetryLog(BlobContainerClient container, string writerId, TimeProvider time, bool compressed = true) : ITelemetryLog
{
    /// <summary>Whether batches are stored as gzip members (<c>.jsonl.gz</c>); the ingestor compresses them before appending.</summary>
    public bool Compressed => compressed;

    /// <summary>Largest append block the store takes.</summary>
    public const int MaxBlockBytes = 4 * 1024 * 1024;

    private const int MaxBlocksPerBlob = 45_000;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private AppendBlobClient? _blob;
    private string? _hour;
    private int _blocks;
    private int _part;
    private bool _created;

    public BlobContainerClient Container => container;

    public string WriterId => writerId;

    public async Task AppendAsync(ReadOnlyMemory<byte> batch, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            while (batch.Length > 0)
            {
                if (compressed && batch.Length > MaxBlockBytes)
                {
                    throw new InvalidOperationException($"a compressed telemetry batch is larger than {MaxBlockBytes} bytes; lower Telemetry:MaxBatchEvents");
                }

                var chunk = batch.Length <= MaxBlockBytes ? batch : batch[..(batch.Span[..MaxBlockBytes].LastIndexOf((byte)'\n') + 1)];
                if (chunk.Length == 0)
                {
                    throw new InvalidOperationException($"a telemetry line is longer than {MaxBlockBytes} bytes");
                }

                var blob = await CurrentAsync(cancellationToken);
                using var stream = new ReadOnlyMemoryStream(chunk);
                await blob.AppendBlockAsync(stream, cancellationToken: cancellationToken);
                _blocks++;
                batch = batch[chunk.Length..];
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async IAsyncEnumerable<TelemetryEvent> ReadAsync(DateTimeOffset from, DateTimeOffset to, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (var hour = Hour(from); hour < to; hour = hour.AddHours(1))
        {
            await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, HourPrefix(hour), cancellationToken))
            {
                var content = await container.GetBlobClient(item.Name).DownloadContentAsync(cancellationToken);
                foreach (var e in TelemetryLines.ParseStored(content.Value.Content.ToMemory(), item.Name.EndsWith(".gz", StringComparison.Ordinal)))
                {
                    if (e.Time >= from && e.Time < to)
                    {
                        yield return e;
                    }
                }
            }
        }
    }

    /// <summary>Blob-name prefix of an hour's blobs.</summary>
    public static string HourPrefix(DateTimeOffset hour) => hour.UtcDateTime.ToString("yyyy/MM/dd/HH/", CultureInfo.InvariantCulture);

    private async Task<AppendBlobClient> CurrentAsync(CancellationToken cancellationToken)
    {
        var hour = HourPrefix(time.GetUtcNow());
        if (_blob is null || hour != _hour || _blocks >= MaxBlocksPerBlob)
        {
            if (!_created)
            {
                await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
                _created = true;
            }

            _part = hour == _hour ? _part + 1 : 0;
            _hour = hour;
            _blocks = 0;
            _blob = container.GetAppendBlobClient($"{hour}{writerId}-{_part}.jsonl{(compressed ? ".gz" : "")}");
            await _blob.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        }

        return _blob;
    }

    private static DateTimeOffset Hour(DateTimeOffset t)
    {
        var u = t.UtcDateTime;
        return new DateTimeOffset(u.Year, u.Month, u.Day, u.Hour, 0, 0, TimeSpan.Zero);
    }

    /// <summary>A read-only stream over memory without copying it.</summary>
    private sealed class ReadOnlyMemoryStream(ReadOnlyMemory<byte> memory) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => memory.Length;

        public override long Position { get => _position; set => _position = (int)value; }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = Math.Min(buffer.Length, memory.Length - _position);
            memory.Span.Slice(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin)
        {
            _position = (int)(origin switch { SeekOrigin.Begin => offset, SeekOrigin.Current => _position + offset, _ => memory.Length + offset });
            return _position;
        }

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

/// <summary>
/// Follows the log as it grows: every poll lists the current and previous hour's blobs and reads each from where it last
/// stopped (ranged reads of whole appended blocks), skipping the reader's own writer (it already saw its events).
/// </summary>
public sealed class TelemetryTail(BlobContainerClient container, string? ownWriterId, TimeProvider time)
{
    private readonly Dictionary<string, long> _offsets = new(StringComparer.Ordinal);
    private bool _ensured;

    /// <summary>Bytes read so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>Starts after everything already in the log (a new reader learns only what comes next).</summary>
    public async Task SkipExistingAsync(CancellationToken cancellationToken)
    {
        await foreach (var (name, length) in BlobsAsync(cancellationToken))
        {
            _offsets[name] = length;
        }
    }

    /// <summary>The events appended since the last poll.</summary>
    public async Task<List<TelemetryEvent>> PollAsync(CancellationToken cancellationToken)
    {
        var events = new List<TelemetryEvent>();
        await foreach (var (name, length) in BlobsAsync(cancellationToken))
        {
            var offset = _offsets.GetValueOrDefault(name);
            if (length <= offset)
            {
                continue;
            }

            var download = await container.GetBlobClient(name).DownloadContentAsync(
                new BlobDownloadOptions { Range = new HttpRange(offset, length - offset) }, cancellationToken);
            var bytes = download.Value.Content.ToMemory();
            if (name.EndsWith(".gz", StringComparison.Ordinal))
            {
                // Appends are atomic, so the range holds whole gzip members.
                events.AddRange(TelemetryLines.ParseStored(bytes, compressed: true));
                _offsets[name] = offset + bytes.Length;
                BytesRead += bytes.Length;
                continue;
            }

            // Appends are whole lines, so the range ends at a line end; keep any partial tail for the next poll.
            var whole = bytes.Span.LastIndexOf((byte)'\n') + 1;
            events.AddRange(TelemetryLines.Parse(bytes.Span[..whole]));
            _offsets[name] = offset + whole;
            BytesRead += whole;
        }

        return events;
    }

    private async IAsyncEnumerable<(string Name, long Length)> BlobsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!_ensured)
        {
            await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
            _ensured = true;
        }

        var now = time.GetUtcNow();
        foreach (var hour in new[] { now.AddHours(-1), now })
        {
            await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, AppendBlobTelemetryLog.HourPrefix(hour), cancellationToken))
            {
                if (ownWriterId is not null && item.Name.Contains($"/{ownWriterId}-", StringComparison.Ordinal))
                {
                    continue;
                }

                yield return (item.Name, item.Properties.ContentLength ?? 0);
            }
        }
    }
}
