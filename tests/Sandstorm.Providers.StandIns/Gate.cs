using System.Text.Json;

namespace Sandstorm.Providers.StandIns;

/// <summary>
/// A file the user code of a test waits for before it finishes (the stand-ins run code on this machine, so it can see the
/// file): the test opens the gate when something has happened — a stream was reattached, say — so no test depends on how
/// long a sleep lasts.
/// </summary>
public sealed class Gate : IDisposable
{
    private readonly CancellationTokenSource _stop = new();

    public Gate()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sandstorm-gate-" + Guid.NewGuid().ToString("n"));
    }

    public string Path { get; }

    /// <summary>Python that prints "a", waits for the gate (a minute at most), then prints "b".</summary>
    public string PythonCode() =>
        "import os, time\nprint('a', flush=True)\ndeadline = time.time() + 60\n"
        + $"while not os.path.exists({JsonSerializer.Serialize(Path)}) and time.time() < deadline: time.sleep(0.02)\nprint('b')";

    public void Open() => File.WriteAllText(Path, "open");

    /// <summary>Opens the gate once <paramref name="condition"/> holds (polled), or after a minute whatever happens.</summary>
    public void OpenWhen(Func<bool> condition) => _ = Task.Run(async () =>
    {
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (!condition() && DateTime.UtcNow < deadline && !_stop.IsCancellationRequested)
        {
            await Task.Delay(20, CancellationToken.None);
        }

        Open();
    });

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
        File.Delete(Path);
    }
}
