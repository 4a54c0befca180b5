using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Sandstorm.Local;

/// <summary>
/// Starts Azurite from the repository's node_modules with its data under the state directory, on free loopback ports,
/// and stops it with the host. A stale Azurite left by a killed host is stopped first (its pid is recorded).
/// </summary>
public sealed class LocalAzurite : IDisposable
{
    private const string DevAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
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
        var location = Path.GetFullPath(Path.Combine(stateDirectory, "azurite"));
        Directory.CreateDirectory(location);
        var pidFile = Path.Combine(location, "azurite.pid");
        StopStale(pidFile);

        var ports = new[] { FreePort(), FreePort(), FreePort() };
        var psi = new ProcessStartInfo(FindAzurite()) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[]
        {
            "--silent", "--skipApiVersionCheck", "--disableProductStyleUrl", "--loose", "--location", location,
            "--blobHost", "127.0.0.1", "--blobPort", ports[0].ToString(),
            "--queueHost", "127.0.0.1", "--queuePort", ports[1].ToString(),
            "--tableHost", "127.0.0.1", "--tablePort", ports[2].ToString(),
        })
        {
            psi.ArgumentList.Add(arg);
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start azurite");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        File.WriteAllText(pidFile, process.Id.ToString());

        var clock = Stopwatch.StartNew();
        foreach (var port in ports)
        {
            while (!Accepts(port))
            {
                if (process.HasExited || clock.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new InvalidOperationException($"azurite did not start on port {port}");
                }

                Thread.Sleep(50);
            }
        }

        var connectionString =
            $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DevAccountKey};" +
            $"BlobEndpoint=http://127.0.0.1:{ports[0]}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{ports[1]}/devstoreaccount1;" +
            $"TableEndpoint=http://127.0.0.1:{ports[2]}/devstoreaccount1;";
        return new LocalAzurite(process, pidFile, connectionString);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        File.Delete(_pidFile);
        _process.Dispose();
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

    private static string FindAzurite()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "node_modules", ".bin", "azurite");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "node_modules", ".bin", "azurite");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("node_modules/.bin/azurite not found: run `npm ci` in the repository root, or pass --storage CONNECTION_STRING");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool Accepts(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
