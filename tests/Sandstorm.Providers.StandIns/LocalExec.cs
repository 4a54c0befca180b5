using System.Diagnostics;

namespace Sandstorm.Providers.StandIns;

/// <summary>
/// Runs a stand-in's "remote" command as a local child process. The stand-ins pretend to be remote sandboxes, so the
/// code really executes (here, on this machine, without isolation: tests only run their own snippets) and outputs are real.
/// </summary>
public sealed class LocalExec : IDisposable
{
    private readonly Process _process;

    private LocalExec(Process process)
    {
        _process = process;
    }

    public int Pid => _process.Id;

    public static LocalExec Start(string command, IEnumerable<string> args, string cwd, IReadOnlyDictionary<string, string>? env, string home)
    {
        var psi = new ProcessStartInfo(command)
        {
            WorkingDirectory = cwd,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["HOME"] = home;
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + command);
        process.StandardInput.Close();
        return new LocalExec(process);
    }

    /// <summary>Pumps stdout and stderr chunks (in arrival order per stream) to the callback until exit; returns the exit code.</summary>
    public async Task<int?> PumpAsync(Func<bool, byte[], Task> onChunk, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        var gate = new SemaphoreSlim(1, 1);
        async Task Pump(Stream s, bool isErr)
        {
            var buffer = new byte[8192];
            int n;
            while ((n = await s.ReadAsync(buffer, CancellationToken.None)) > 0)
            {
                await gate.WaitAsync(CancellationToken.None);
                try
                {
                    await onChunk(isErr, buffer[..n]);
                }
                finally
                {
                    gate.Release();
                }
            }
        }

        var pumps = Task.WhenAll(Pump(_process.StandardOutput.BaseStream, false), Pump(_process.StandardError.BaseStream, true));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            await pumps;
            return _process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            Kill();
            return null;
        }
    }

    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
