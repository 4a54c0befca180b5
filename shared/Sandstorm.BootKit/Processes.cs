using System.Diagnostics;
using System.Text;

namespace Sandstorm.BootKit;

/// <summary>Runs the build's tools, appending their output to the build log.</summary>
internal sealed class Processes(TextWriter log)
{
    /// <summary>True when <paramref name="tool"/> is on PATH.</summary>
    public static bool Exists(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(d => File.Exists(Path.Combine(d, tool)));

    /// <summary>Runs <paramref name="argv"/>; its standard output is returned, its errors logged; a non-zero exit throws with the last lines.</summary>
    public async Task<string> RunAsync(IReadOnlyList<string> argv, CancellationToken ct, string? stdin = null)
    {
        var psi = new ProcessStartInfo(argv[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in argv.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        await log.WriteLineAsync("$ " + ShellQuote.Sh(argv));
        await log.FlushAsync(ct);
        using var process = Process.Start(psi) ?? throw new BootKitBuildException($"could not start {argv[0]}");
        var tail = new Queue<string>();
        var stderr = Task.Run(async () =>
        {
            while (await process.StandardError.ReadLineAsync(ct) is { } line)
            {
                lock (tail)
                {
                    tail.Enqueue(line);
                    if (tail.Count > 20)
                    {
                        tail.Dequeue();
                    }

                    log.WriteLine(line);
                }
            }
        }, ct);
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }

        var stdout = new StringBuilder();
        var reading = Task.Run(async () =>
        {
            var buffer = new char[8192];
            int n;
            while ((n = await process.StandardOutput.ReadAsync(buffer, ct)) > 0)
            {
                stdout.Append(buffer, 0, n);
            }
        }, ct);
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        await Task.WhenAll(stderr, reading);
        if (process.ExitCode != 0)
        {
            string last;
            lock (tail)
            {
                last = string.Join('\n', tail.TakeLast(8));
            }

            throw new BootKitBuildException($"{Path.GetFileName(argv[0])} exited with {process.ExitCode}: {last}");
        }

        return stdout.ToString();
    }
}

/// <summary>A build step failed; nothing of the build is left in the output folder.</summary>
public sealed class BootKitBuildException : Exception
{
    public BootKitBuildException()
    {
    }

    public BootKitBuildException(string message)
        : base(message)
    {
    }

    public BootKitBuildException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
