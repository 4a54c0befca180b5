using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Sandstorm.Storage;

/// <summary>Starts and stops Azurite from the repository's node_modules on free loopback ports (local host, benchmarks, tests).</summary>
public static class AzuriteProcess
{
    /// <summary>Well-known Azurite development account key (public, documented by Microsoft).</summary>
    public const string DevAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// <summary>Starts Azurite on free loopback ports and waits until all three services accept connections.</summary>
    /// <remarks>
    /// A port found free can be taken by another process before Azurite binds it; Azurite then exits at once. That is
    /// retried on fresh ports, twice, before giving up.
    /// </remarks>
    public static (Process Process, string ConnectionString) Start(string location, bool inMemory)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return StartOnce(location, inMemory);
            }
            catch (AzuriteExitedException) when (attempt < 3)
            {
            }
        }
    }

    private sealed class AzuriteExitedException(string message) : InvalidOperationException(message);

    private static (Process Process, string ConnectionString) StartOnce(string location, bool inMemory)
    {
        var azurite = FindAzurite();
        if (!inMemory)
        {
            Directory.CreateDirectory(location);
        }

        var (blob, queue, table) = (FreePort(), FreePort(), FreePort());
        var psi = new ProcessStartInfo(azurite)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            "--silent", "--skipApiVersionCheck", "--disableProductStyleUrl", "--loose",
            "--blobHost", "127.0.0.1", "--blobPort", blob.ToString(),
            "--queueHost", "127.0.0.1", "--queuePort", queue.ToString(),
            "--tableHost", "127.0.0.1", "--tablePort", table.ToString(),
        })
        {
            psi.ArgumentList.Add(arg);
        }

        if (inMemory)
        {
            psi.ArgumentList.Add("--inMemoryPersistence");
        }
        else
        {
            psi.ArgumentList.Add("--location");
            psi.ArgumentList.Add(location);
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start azurite");
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.OutputDataReceived += (_, e) => log.Enqueue(e.Data ?? "");
        process.ErrorDataReceived += (_, e) => log.Enqueue(e.Data ?? "");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        foreach (var port in new[] { blob, queue, table })
        {
            while (!Accepts(port))
            {
                if (process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(60))
                {
                    var exited = process.HasExited;
                    Stop(process);
                    var message = $"azurite did not start (port {port}, exited: {exited}): {string.Join("\n", log)}";
                    throw exited ? new AzuriteExitedException(message) : new InvalidOperationException(message);
                }

                Thread.Sleep(50);
            }
        }

        // Accepting ports and a dead Azurite means someone else answered on them.
        if (process.HasExited)
        {
            Stop(process);
            throw new AzuriteExitedException($"azurite exited while its ports answered (another process holds them): {string.Join("\n", log)}");
        }

        return (process, ConnectionString(blob, queue, table));
    }

    public static string ConnectionString(int blob, int queue, int table) =>
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
        $"AccountKey={DevAccountKey};" +
        $"BlobEndpoint=http://127.0.0.1:{blob}/devstoreaccount1;" +
        $"QueueEndpoint=http://127.0.0.1:{queue}/devstoreaccount1;" +
        $"TableEndpoint=http://127.0.0.1:{table}/devstoreaccount1;";

    public static void Stop(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        process.Dispose();
    }

    /// <summary>node_modules/.bin/azurite of the repository, looked up from the current directory, then from the program's.</summary>
    public static string FindAzurite()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "node_modules", ".bin", "azurite");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new FileNotFoundException("node_modules/.bin/azurite not found: run `npm ci` in the repository root, or pass a storage connection string");
    }

    public static int FreePort()
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
