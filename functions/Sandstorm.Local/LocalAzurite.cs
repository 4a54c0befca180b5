using System.Diagnostics;
using Sandstorm.Storage;

namespace Sandstorm.Local;

/// <summary>
/// Azurite for the local host, with its data under the state directory, stopped with the host. A stale Azurite left by a
/// killed host is stopped first (its pid is recorded) — gracefully, so that it saves what it still holds in memory.
/// </summary>
/// <remarks>
/// Azurite keeps its metadata (tables, queue messages, blob metadata) in memory and saves it every five seconds; only a
/// SIGTERM or SIGINT makes it save before it exits. A SIGKILL loses up to five seconds of acknowledged writes.
/// </remarks>
public sealed class LocalAzurite : IDisposable
{
    /// <summary>How long a stopping Azurite may take to save and exit before it is killed.</summary>
    public static readonly TimeSpan SaveGrace = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly string _pidFile;

    private LocalAzurite(Process process, string pidFile, string location, string connectionString)
    {
        _process = process;
        _pidFile = pidFile;
        Location = location;
        ConnectionString = connectionString;
    }

    public string ConnectionString { get; }

    /// <summary>Azurite's data directory.</summary>
    public string Location { get; }

    public static LocalAzurite Start(string stateDirectory)
    {
        LocalState.CreatePrivateDirectory(stateDirectory);
        var location = Path.GetFullPath(Path.Combine(stateDirectory, "azurite"));
        LocalState.CreatePrivateDirectory(location);
        var pidFile = Path.Combine(location, "azurite.pid");
        StopStale(pidFile);

        var (process, connectionString) = AzuriteProcess.Start(location, inMemory: false);
        File.WriteAllText(pidFile, process.Id.ToString());
        return new LocalAzurite(process, pidFile, location, connectionString);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            StopGracefully(_process);
        }

        _process.Dispose();
        File.Delete(_pidFile);
    }

    private static void StopStale(string pidFile)
    {
        if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile), out var pid))
        {
            return;
        }

        try
        {
            using var stale = Process.GetProcessById(pid);
            if (stale.ProcessName.Contains("node", StringComparison.OrdinalIgnoreCase) || stale.ProcessName.Contains("azurite", StringComparison.OrdinalIgnoreCase))
            {
                StopGracefully(stale);
            }
        }
        catch (ArgumentException)
        {
            // No such process.
        }
    }

    /// <summary>SIGTERM, then wait for Azurite to save and exit; SIGKILL only if it does not within <see cref="SaveGrace"/>.</summary>
    private static void StopGracefully(Process process)
    {
        try
        {
            using (var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-TERM", process.Id.ToString() }, UseShellExecute = false }))
            {
                kill?.WaitForExit();
            }

            if (!process.WaitForExit(SaveGrace))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }
}
