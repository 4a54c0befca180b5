using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Sandstorm.Telemetry;

/// <summary>Where every producer (Settle, provider health, edge endpoints) publishes telemetry.</summary>
public interface ITelemetrySink
{
    /// <summary>Queues one event without waiting; false when the queue is full (the event is dropped and counted).</summary>
    bool Publish(TelemetryEvent e);
}

/// <summary>Settings of the ingestion path (configuration section <c>Telemetry</c>).</summary>
public sealed class TelemetryOptions
{
    public const string Section = "Telemetry";

    /// <summary>Blob container of the log.</summary>
    public string Container { get; set; } = "telemetry";

    /// <summary>Most events written in one append (one store round trip).</summary>
    public int MaxBatchEvents { get; set; } = 20_000;

    /// <summary>Longest an event waits for its batch to fill before the batch is written anyway.</summary>
    public TimeSpan MaxBatchDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Events queued at most; beyond, <see cref="ITelemetrySink.Publish"/> drops (producers never block on telemetry).</summary>
    public int QueueCapacity { get; set; } = 1_000_000;

    /// <summary>How often a learner polls the log for other writers' events.</summary>
    public TimeSpan TailInterval { get; set; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// The one ingestion path: producers <see cref="Publish"/> into a bounded in-memory queue; one writer drains it in batches of
/// up to <see cref="TelemetryOptions.MaxBatchEvents"/> (or whatever arrived within <see cref="TelemetryOptions.MaxBatchDelay"/>),
/// serialises each batch to JSON lines and appends it to the durable log in one write. <see cref="FlushAsync"/> returns once
/// everything published before it is durable.
/// </summary>
public sealed partial class TelemetryIngestor : BackgroundService, ITelemetrySink
{
    private readonly Channel<TelemetryEvent> _queue;
    private readonly ITelemetryLog _log;
    private readonly TelemetryOptions _options;
    private readonly ILogger<TelemetryIngestor> _logger;
    private readonly Lock _flushGate = new();
    private long _published;
    private long _written;
    private long _dropped;
    private List<(long Target, TaskCompletionSource Done)> _flushes = [];

    public TelemetryIngestor(ITelemetryLog log, TelemetryOptions options, ILogger<TelemetryIngestor> logger)
    {
        _log = log;
        _options = options;
        _logger = logger;
        _queue = Channel.CreateBounded<TelemetryEvent>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.DropWrite,
        });
    }

    /// <summary>Events written to the log so far.</summary>
    public long Written => Interlocked.Read(ref _written);

    /// <summary>Events dropped because the queue was full.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Bytes appended so far.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Called with each batch's bytes after it is durable (the benchmark keeps them to write them again bare).</summary>
    public Action<ReadOnlyMemory<byte>>? OnBatchWritten { get; set; }

    public bool Publish(TelemetryEvent e)
    {
        if (_queue.Writer.TryWrite(e))
        {
            Interlocked.Increment(ref _published);
            return true;
        }

        Interlocked.Increment(ref _dropped);
        return false;
    }

    /// <summary>Waits until every event published before the call is in the log.</summary>
    public Task FlushAsync(CancellationToken cancellationToken)
    {
        var target = Interlocked.Read(ref _published);
        lock (_flushGate)
        {
            if (Interlocked.Read(ref _written) >= target)
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _flushes.Add((target, done));
            return done.Task.WaitAsync(cancellationToken);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var buffer = new MemoryStream(1 << 22);
        using var writer = new Utf8JsonWriter(buffer);
        var reader = _queue.Reader;
        var compress = _log is AppendBlobTelemetryLog { Compressed: true };
        // One append in flight while the next batch is serialised: the store's round trip and the CPU work overlap.
        Task inFlight = Task.CompletedTask;
        while (await reader.WaitToReadAsync(stoppingToken))
        {
            buffer.SetLength(0);
            var count = 0;
            var started = Stopwatch.GetTimestamp();
            while (count < _options.MaxBatchEvents)
            {
                if (reader.TryRead(out var e))
                {
                    TelemetryLines.Write(writer, buffer, e);
                    count++;
                    continue;
                }

                // A partial batch waits a little for more, never past the delay.
                var left = _options.MaxBatchDelay - Stopwatch.GetElapsedTime(started);
                if (left <= TimeSpan.Zero || !await WaitAsync(reader, left, stoppingToken))
                {
                    break;
                }
            }

            var lines = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
            ReadOnlyMemory<byte> bytes = compress ? TelemetryLines.Compress(lines) : lines.ToArray();
            await inFlight;
            inFlight = AppendAsync(bytes, count, stoppingToken);
        }

        await inFlight;
    }

    private async Task AppendAsync(ReadOnlyMemory<byte> bytes, int count, CancellationToken cancellationToken)
    {
        try
        {
            await _log.AppendAsync(bytes, cancellationToken);
            BytesWritten += bytes.Length;
            OnBatchWritten?.Invoke(bytes);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Telemetry is not the ledger: a batch the store refused is logged and dropped, the pipeline goes on.
            LogAppendFailed(_logger, ex, count);
            Interlocked.Add(ref _dropped, count);
        }

        Interlocked.Add(ref _written, count);
        CompleteFlushes();
    }

    private static async Task<bool> WaitAsync(ChannelReader<TelemetryEvent> reader, TimeSpan left, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(left);
        try
        {
            return await reader.WaitToReadAsync(cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private void CompleteFlushes()
    {
        lock (_flushGate)
        {
            var written = Interlocked.Read(ref _written);
            var waiting = _flushes;
            _flushes = [];
            foreach (var f in waiting)
            {
                if (written >= f.Target)
                {
                    f.Done.TrySetResult();
                }
                else
                {
                    _flushes.Add(f);
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "A telemetry batch of {Count} events could not be appended and was dropped")]
    private static partial void LogAppendFailed(ILogger logger, Exception e, int count);
}
