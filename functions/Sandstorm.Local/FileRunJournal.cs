using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Orchestrations;

namespace Sandstorm.Local;

/// <summary>
/// The local host's intake journal (<c>.sandstorm/intake.journal</c>, JSON lines): an accepted run is appended and
/// fsynced before its <c>202</c>, and so is the start of its code. <see cref="RunJournalReplay"/> submits again, on
/// start, what the embedded Azurite lost in a crash, and drops a run once it settled and Azurite's files holding that
/// were saved and fsynced.
/// </summary>
/// <remarks>
/// Azurite acknowledges writes it holds in memory and saves them every five seconds without fsync, so after a machine
/// crash its files can lack any write of the last seconds. The journal is the host's only durable record of them.
/// </remarks>
public sealed class FileRunJournal : IRunJournal, IDisposable
{
    public const string FileName = "intake.journal";

    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly string _path;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, Entry> _entries = [];

    // Runs whose code started before their acceptance was journaled (Execute can win the race with the append that
    // follows scheduling): the acceptance then carries the mark. Forgotten after a minute (a batch's runs are never accepted here).
    private readonly Dictionary<string, DateTimeOffset> _startedEarly = [];
    private FileStream _file;

    public FileRunJournal(string stateDirectory, TimeProvider time)
    {
        LocalState.CreatePrivateDirectory(stateDirectory);
        _path = Path.Combine(stateDirectory, FileName);
        _time = time;
        Load();
        _file = Rewrite();
    }

    /// <summary>The runs recorded and not yet dropped.</summary>
    public IReadOnlyList<JournaledRun> Runs
    {
        get
        {
            _lock.Wait();
            try
            {
                return [.. _entries.Values.Select(e => e.Run)];
            }
            finally
            {
                _lock.Release();
            }
        }
    }

    public async ValueTask AcceptedAsync(JournaledRun run, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(CancellationToken.None);
        try
        {
            if (_startedEarly.Remove(run.RunId))
            {
                run = run with { Started = true };
            }

            _entries[run.RunId] = new Entry(run);
            Append(new Line { Accepted = run });
        }
        finally
        {
            _lock.Release();
        }
    }

    public async ValueTask<bool> StartingAsync(string runId, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(CancellationToken.None);
        try
        {
            if (!_entries.TryGetValue(runId, out var entry))
            {
                // Not journaled (yet, or a batch's run): its acceptance, should it follow, carries the mark.
                var now = _time.GetUtcNow();
                foreach (var (id, at) in _startedEarly)
                {
                    if (now - at > TimeSpan.FromMinutes(1))
                    {
                        _startedEarly.Remove(id);
                    }
                }

                return _startedEarly.TryAdd(runId, now);
            }

            if (entry.Run.Started)
            {
                return false;
            }

            entry.Run = entry.Run with { Started = true };
            Append(new Line { Started = runId });
            return true;
        }
        finally
        {
            _lock.Release();
        }
    }

    public async ValueTask NeverStartedAsync(string runId, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(CancellationToken.None);
        try
        {
            _startedEarly.Remove(runId);
            if (_entries.TryGetValue(runId, out var entry) && entry.Run.Started)
            {
                entry.Run = entry.Run with { Started = false };
                Append(new Line { NeverStarted = runId });
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Notes that the run is settled in the store (from now on, its next save holds that).</summary>
    public void Settled(string runId)
    {
        _lock.Wait();
        try
        {
            if (_entries.TryGetValue(runId, out var entry))
            {
                entry.SettledSeenAt ??= _time.GetUtcNow();
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Runs seen settled before <paramref name="cutoff"/>: the store has saved that since.</summary>
    public IReadOnlyList<string> SettledBefore(DateTimeOffset cutoff)
    {
        _lock.Wait();
        try
        {
            return [.. _entries.Values.Where(e => e.SettledSeenAt < cutoff).Select(e => e.Run.RunId)];
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Drops runs whose settlement is on disk: rewrites the journal without them (a new file, fsynced, renamed over).</summary>
    public void Drop(IReadOnlyCollection<string> runIds)
    {
        if (runIds.Count == 0)
        {
            return;
        }

        _lock.Wait();
        try
        {
            foreach (var id in runIds)
            {
                _entries.Remove(id);
            }

            _file.Dispose();
            _file = Rewrite();
        }
        finally
        {
            _lock.Release();
        }
    }

    public void Dispose()
    {
        _file.Dispose();
        _lock.Dispose();
    }

    /// <summary>fsync of files and directories by path (<c>sync FILE...</c>): .NET cannot open a directory to fsync it.</summary>
    public static void Sync(IEnumerable<string> paths)
    {
        var psi = new ProcessStartInfo("sync") { UseShellExecute = false };
        foreach (var path in paths)
        {
            psi.ArgumentList.Add(path);
        }

        if (psi.ArgumentList.Count == 0)
        {
            return;
        }

        using var sync = Process.Start(psi) ?? throw new InvalidOperationException("could not start sync");
        sync.WaitForExit();
        if (sync.ExitCode != 0)
        {
            throw new IOException($"sync exited with {sync.ExitCode}");
        }
    }

    private void Append(Line line)
    {
        var bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(line, SandstormJson.Options) + "\n");
        _file.Write(bytes);
        _file.Flush(flushToDisk: true);
    }

    /// <summary>Reads the journal; a torn last line (a crash while appending, never acknowledged) ends it.</summary>
    private void Load()
    {
        if (!File.Exists(_path))
        {
            return;
        }

        foreach (var text in File.ReadLines(_path))
        {
            Line? line;
            try
            {
                line = JsonSerializer.Deserialize<Line>(text, SandstormJson.Options);
            }
            catch (JsonException)
            {
                break;
            }

            if (line?.Accepted is { } run)
            {
                _entries[run.RunId] = new Entry(run);
            }
            else if (line?.Started is { } started && _entries.TryGetValue(started, out var entry))
            {
                entry.Run = entry.Run with { Started = true };
            }
            else if (line?.NeverStarted is { } never && _entries.TryGetValue(never, out var again))
            {
                again.Run = again.Run with { Started = false };
            }
        }
    }

    /// <summary>Writes the live entries to a new file, fsyncs it, renames it over the journal, fsyncs the directory; returns it open for appends.</summary>
    private FileStream Rewrite()
    {
        var next = _path + ".next";
        using (var file = new FileStream(next, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            foreach (var entry in _entries.Values)
            {
                file.Write(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Line { Accepted = entry.Run }, SandstormJson.Options) + "\n"));
            }

            file.Flush(flushToDisk: true);
        }

        File.Move(next, _path, overwrite: true);
        Sync([Path.GetDirectoryName(_path)!]);
        return new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read);
    }

    private sealed class Entry(JournaledRun run)
    {
        public JournaledRun Run { get; set; } = run;

        public DateTimeOffset? SettledSeenAt { get; set; }
    }

    private sealed record Line
    {
        public JournaledRun? Accepted { get; init; }

        public string? Started { get; init; }

        public string? NeverStarted { get; init; }
    }
}
