using System.Diagnostics;
using Sandstorm.Storage;

namespace Sandstorm.Local;

/// <summary>
/// Azurite for the local host, with its data under the state directory, stopped with the host. A stale Azurite left by a killed host is stopped first (its pid is recorded).
/// </summary>
public sealed class LocalAzurite : IDisposable
{
    private readonly Process _process;
    private readonly string _pidFile;

    private LocalAzurite(Process process, string pidFile, string connectionString)
    {
        _process = process;
        _pidFile = pidFile;
        ConnectionString = connectionString;
    }

    public string ConnectionString { get; }

    public static LocalAzurite Start(string stateDirectory)
    {
        LocalState.CreatePrivateDirectory(stateDirectory);
        var location = Path.GetFullPath(Path.Combine(stateDirectory, "azurite"));
        LocalState.CreatePrivateDirectory(location);
        var pidFile = Path.Combine(location, "azurite.pid");
        StopStale(pidFile);

        var (process, connectionString) = AzuriteProcess.Start(location, inMemory: false);
        File.WriteAllText(pidFile, process.Id.ToString());
        return new LocalAzurite(process, pidFile, connectionString);
    }

    public void Dispose()
    {
        AzuriteProcess.Stop(_process);
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
                stale.Kill(entireProcessTree: true);
                stale.WaitForExit(5000);
            }
        }
        catch (ArgumentException)
        {
            // No such process.
        }
    }
}
