namespace Sandstorm.Runtimes;

/// <summary>
/// Kept sandboxes of one runtime started ahead of demand, so creating one costs a claim (setting its limits) instead of
/// a start. A sandbox is claimed once and never returned: it belongs to whoever took it. A request the warm ones cannot
/// serve (a larger disk, another process limit) starts its own; either way a replacement starts in the background.
/// </summary>
public sealed class KeptSandboxPool : IAsyncDisposable
{
    private readonly SandboxRuntimeBase _runtime;
    private readonly KeptSandboxSpec _warmSpec;
    private readonly int _size;
    private readonly Lock _lock = new();
    private readonly Queue<KeptSandbox> _warm = new();
    private readonly List<Task> _starts = [];
    private int _starting;
    private bool _disposed;

    public KeptSandboxPool(SandboxRuntimeBase runtime, KeptSandboxSpec warmSpec, int size)
    {
        _runtime = runtime;
        _warmSpec = warmSpec;
        _size = size;
    }

    public string Runtime => _runtime.Name;

    /// <summary>Warm sandboxes ready now.</summary>
    public int Ready
    {
        get
        {
            lock (_lock)
            {
                return _warm.Count(s => s.IsAlive);
            }
        }
    }

    /// <summary>Starts filling the pool now.</summary>
    public void Start() => Refill();

    /// <summary>A sandbox with <paramref name="spec"/>'s limits: a warm one when one fits, else a fresh one.</summary>
    public async Task<KeptSandbox> TakeAsync(KeptSandboxSpec spec, CancellationToken ct)
    {
        if (spec.DiskMiB <= _warmSpec.DiskMiB && spec.MaxProcesses == _warmSpec.MaxProcesses)
        {
            while (true)
            {
                KeptSandbox? claimed;
                lock (_lock)
                {
                    _warm.TryDequeue(out claimed);
                }

                if (claimed is null)
                {
                    break;
                }

                if (!claimed.IsAlive)
                {
                    await claimed.DisposeAsync();
                    continue;
                }

                try
                {
                    claimed.ApplyLimits(spec);
                    if (spec.TenantId is { } tenant)
                    {
                        claimed.AssignTenant(tenant);
                    }

                    if (spec.Shield is { } policy)
                    {
                        claimed.WatchWithShield(policy);
                    }

                    Refill();
                    return claimed;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // E.g. a memory limit below what the idle sandbox already uses: start a fitting one instead.
                    await claimed.DisposeAsync();
                    break;
                }
            }
        }

        Refill();
        return await _runtime.StartKeptAsync(spec, ct);
    }

    /// <summary>Waits until the pool holds its size (or the timeout passes).</summary>
    public async Task<bool> WaitReadyAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            while (Ready < _size)
            {
                Refill();
                await Task.Delay(20, deadline.Token);
            }

            return true;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        List<KeptSandbox> left;
        List<Task> running;
        lock (_lock)
        {
            _disposed = true;
            left = [.. _warm];
            _warm.Clear();
            running = [.. _starts];
        }

        await Task.WhenAll(running);
        foreach (var sandbox in left)
        {
            await sandbox.DisposeAsync();
        }
    }

    private void Refill()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _starts.RemoveAll(t => t.IsCompleted);
            for (var missing = _size - _warm.Count - _starting; missing > 0; missing--)
            {
                _starting++;
                _starts.Add(Task.Run(StartOneAsync));
            }
        }
    }

    private async Task StartOneAsync()
    {
        KeptSandbox? sandbox = null;
        try
        {
            sandbox = await _runtime.StartKeptAsync(_warmSpec, CancellationToken.None);
            lock (_lock)
            {
                if (!_disposed)
                {
                    _warm.Enqueue(sandbox);
                    sandbox = null;
                }
            }
        }
        catch (Exception)
        {
            // The pool is an optimisation: a request without a warm sandbox starts its own.
        }
        finally
        {
            lock (_lock)
            {
                _starting--;
            }

            if (sandbox is not null)
            {
                await sandbox.DisposeAsync();
            }
        }
    }
}
