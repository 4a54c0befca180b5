using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes.Internal;

/// <summary>A run the fork server started: its pid, and its exit code once it has ended (128 + n for signal n).</summary>
internal sealed record ForkedRun(int Pid, Task<int> Exit);

/// <summary>
/// One long-lived Python interpreter that forks a child per <c>process</c>-runtime run (python-fork-server.py): a fork
/// costs a few milliseconds of CPU where starting <c>python3</c> costs tens. The server starts in the background on the
/// first Python run, which itself still starts cold; so does every run while the server is not up. If the server dies,
/// its children die with it (parent-death signal) and the next run starts it again.
/// </summary>
internal sealed class PythonForkServer(RuntimeOptions options) : IAsyncDisposable
{
    private static readonly Lazy<string> Script = new(() =>
    {
        using var stream = typeof(PythonForkServer).Assembly.GetManifestResourceStream("python-fork-server.py")
            ?? throw new InvalidOperationException("the fork server script is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    // A server that fails this many times in a row without becoming ready is not started again.
    private const int MaxFailures = 3;

    // A fork takes milliseconds; a server silent this long is stuck.
    private static readonly TimeSpan ForkReplyTimeout = TimeSpan.FromSeconds(10);

    private readonly Lock _gate = new();
    private readonly ConcurrentDictionary<string, Pending> _pending = new(StringComparer.Ordinal);
    private Process? _process;

    // The running server's pid (0: none), readable without the lock, which a write to a stuck server's full pipe holds.
    private volatile int _serverPid;
    private Task _lifetime = Task.CompletedTask;
    private StreamWriter? _input;
    private bool _ready;
    private bool _starting;
    private bool _disposed;
    private int _failures;
    private long _forked;

    /// <summary>Runs forked so far (tests check that a run took this path).</summary>
    public long Forked => Interlocked.Read(ref _forked);

    /// <summary>Pid of the running server, if any (tests kill it).</summary>
    public int? Pid => _serverPid is var pid and > 0 ? pid : null;

    /// <summary>
    /// Where this process creates the runs' FIFOs: one directory per process, so that a process killed mid-run (which
    /// cannot remove its FIFOs) is told apart from a live one sharing the work root, and swept by the next server.
    /// </summary>
    public string FifoDirectory { get; } = Path.Combine(options.WorkRoot, "fifo", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>
    /// Runs whose interpreter state a fork cannot reproduce start cold: any <c>PYTHON*</c> variable changes how an
    /// interpreter starts (paths, hash seed, flags), which happened before the fork.
    /// </summary>
    public static bool Serves(ExecutionSpec spec) =>
        spec.Language == Languages.Python && (spec.Environment is null || !spec.Environment.Keys.Any(k => k.StartsWith("PYTHON", StringComparison.Ordinal)));

    /// <summary>For tests: the server waits this long after a fork before it answers with the pid.</summary>
    internal TimeSpan ReplyDelay { get; set; }

    /// <summary>True when the server is up; otherwise starts it in the background (unless it keeps failing) and returns false.</summary>
    public bool IsReady()
    {
        lock (_gate)
        {
            if (_ready || _starting || _disposed || _failures >= MaxFailures)
            {
                return _ready;
            }

            _starting = true;
            _lifetime = StartAsync();
        }

        return false;
    }

    /// <summary>Forks a child for one run. Its stdout and stderr go to FIFOs the caller holds open for reading.</summary>
    public async Task<ForkedRun> ForkAsync(
        string id, string main, string workingDirectory, IReadOnlyDictionary<string, string> environment,
        string stdoutFifo, string stderrFifo, IEnumerable<string> procsFiles, long maxFileBytes)
    {
        var pending = new Pending();
        _pending[id] = pending;
        var request = new JsonObject
        {
            ["id"] = id,
            ["main"] = main,
            ["cwd"] = workingDirectory,
            ["env"] = new JsonObject(environment.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["stdout"] = stdoutFifo,
            ["stderr"] = stderrFifo,
            ["procs"] = new JsonArray([.. procsFiles.Select(p => (JsonNode?)p)]),
            ["fsize"] = maxFileBytes,
        };
        if (ReplyDelay > TimeSpan.Zero)
        {
            request["hold"] = ReplyDelay.TotalSeconds;
        }

        try
        {
            StreamWriter input;
            lock (_gate)
            {
                input = _ready ? _input! : throw new IOException("the python fork server is not running");
                input.Write(request.ToJsonString() + "\n");
            }

            int pid;
            try
            {
                pid = await pending.Pid.Task.WaitAsync(ForkReplyTimeout);
            }
            catch (TimeoutException)
            {
                // A server that does not answer is broken: kill it (its children go with it); the caller decides whether
                // the run had begun (ChildRunner.RunForkedAsync).
                if (Pid is { } stuck)
                {
                    Libc.kill(stuck, Libc.SIGKILL);
                }

                throw new IOException($"the python fork server did not answer within {ForkReplyTimeout.TotalSeconds:0} s");
            }

            Interlocked.Increment(ref _forked);
            return new ForkedRun(pid, pending.Exit.Task);
        }
        catch
        {
            _pending.TryRemove(id, out _);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task lifetime;
        int? pid;
        lock (_gate)
        {
            _disposed = true;
            pid = _ready ? _process?.Id : null;
            _ready = false;
            _input?.Dispose();
            lifetime = _lifetime;
        }

        // End of its stdin ends the server, and its children with it (their parent-death signal).
        try
        {
            await lifetime.WaitAsync(options.KillGrace);
        }
        catch (TimeoutException) when (pid is not null)
        {
            Libc.kill(pid.Value, Libc.SIGKILL);
            await lifetime;
        }
    }

    private async Task StartAsync()
    {
        SweepFifos();
        var (command, arguments) = Languages.Interpreter(Languages.Python);
        var psi = new ProcessStartInfo("/usr/bin/setpriv")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = false,
            WorkingDirectory = "/",
        };
        foreach (var argument in (string[])["--pdeathsig", "KILL", "--", command, .. arguments, "-c", Script.Value])
        {
            psi.ArgumentList.Add(argument);
        }

        psi.Environment.Clear();
        foreach (var (key, value) in SandboxRuntimeBase.BaseEnvironment("/"))
        {
            psi.Environment[key] = value;
        }

        var process = new Process { StartInfo = psi };
        try
        {
            // From the spawner thread: the parent-death signal then means "this process died", not "a pool thread retired".
            await Spawner.StartAsync(process);
            var output = process.StandardOutput;
            var first = await output.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            if (first is null || JsonNode.Parse(first)?["ready"] is null)
            {
                throw new IOException($"the python fork server did not start: {first}");
            }

            lock (_gate)
            {
                _starting = false;
                if (_disposed)
                {
                    process.StandardInput.Dispose();
                    return;
                }

                (_process, _input, _ready, _failures) = (process, process.StandardInput, true, 0);
                _serverPid = process.Id;
                _input.AutoFlush = true;
            }

            await ReadRepliesAsync(output);
        }
        catch (Exception e) when (e is IOException or TimeoutException or JsonException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            lock (_gate)
            {
                _starting = false;
                _failures++;
            }
        }
        finally
        {
            lock (_gate)
            {
                if (ReferenceEquals(_process, process))
                {
                    (_process, _input, _ready) = (null, null, false);
                    _serverPid = 0;
                }
            }

            try
            {
                process.Kill();
            }
            catch (InvalidOperationException)
            {
            }

            process.Dispose();

            // Its children died with it: their runs end without an exit code.
            foreach (var id in _pending.Keys)
            {
                if (_pending.TryRemove(id, out var pending))
                {
                    var gone = new IOException("the python fork server exited");
                    pending.Pid.TrySetException(gone);
                    pending.Exit.TrySetException(gone);
                }
            }
        }
    }

    // FIFO directories of processes that are gone (a live process's pid directory is never touched).
    private void SweepFifos()
    {
        var root = Path.GetDirectoryName(FifoDirectory)!;
        try
        {
            foreach (var dir in Directory.EnumerateDirectories(root))
            {
                if (int.TryParse(Path.GetFileName(dir), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)
                    && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
                {
                    Directory.Delete(dir, recursive: true);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Another server swept it meanwhile, or the root does not exist yet.
        }

        Directory.CreateDirectory(FifoDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private async Task ReadRepliesAsync(StreamReader output)
    {
        while (await output.ReadLineAsync() is { } line)
        {
            var reply = JsonNode.Parse(line)!.AsObject();
            var id = (string)reply["id"]!;
            if (reply["pid"] is { } pid && _pending.TryGetValue(id, out var started))
            {
                started.Pid.TrySetResult((int)pid);
            }
            else if (reply["error"] is { } error && _pending.TryRemove(id, out var failed))
            {
                failed.Pid.TrySetException(new IOException($"the python fork server could not start the run: {(string?)error}"));
            }
            else if (reply["exit"] is { } exit && _pending.TryRemove(id, out var ended))
            {
                ended.Exit.TrySetResult((int)exit);
            }
        }
    }

    private sealed class Pending
    {
        public TaskCompletionSource<int> Pid { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<int> Exit { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
