using System.Collections.Concurrent;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Providers;

namespace Sandstorm.Orchestrations.Tests;

/// <summary>
/// A provider whose behaviour the test scripts: provisioning that fails, execution that hangs until released.
/// It stands in for a sandbox cloud so the orchestration's failover, timeout and cancel paths can be driven exactly.
/// </summary>
public sealed class ScriptedProvider(string name, double vcpuPrice) : ISandboxProvider
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _hanging = new();

    public ProviderCapabilities Capabilities { get; } = new()
    {
        Provider = name,
        Runtimes = [new RuntimeOffer("scripted", IsolationLevel.Standard)],
        Regions = ["test"],
        Languages = Languages.Supported,
        Price = new PriceSheet { VcpuSecond = vcpuPrice, GibSecond = 0 },
    };

    /// <summary>Provisioning fails with a non-transient error.</summary>
    public bool FailProvision { get; set; }

    /// <summary>Execution never returns until the sandbox is released.</summary>
    public bool HangExecution { get; set; }

    /// <summary>
    /// Execution failures to throw, one per call, before executions succeed: each is a transient provider error that
    /// says whether the code never started.
    /// </summary>
    public ConcurrentQueue<bool> ExecuteFailures { get; } = new();

    /// <summary>Calls of <see cref="ExecuteAsync"/>, and how many of them let the code run.</summary>
    public int ExecuteCalls => _executeCalls;

    public int CodeRuns => _codeRuns;

    private int _executeCalls;
    private int _codeRuns;

    public ConcurrentBag<string> Provisioned { get; } = [];

    public ConcurrentBag<string> Released { get; } = [];

    public Task<SandboxLease> ProvisionAsync(ProvisionRequest request, CancellationToken cancellationToken)
    {
        if (FailProvision)
        {
            throw new ProviderException(name, ErrorCodes.ProvisionFailed, "quota exceeded (scripted)");
        }

        Provisioned.Add(request.RunId);
        return Task.FromResult(new SandboxLease(name, "sbx-" + request.RunId, "scripted", "test"));
    }

    public async Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _executeCalls);
        if (ExecuteFailures.TryDequeue(out var neverStarted))
        {
            if (!neverStarted)
            {
                // The code started, then the provider stopped answering: a timeout, as a cloud's would look.
                Interlocked.Increment(ref _codeRuns);
            }

            throw new ProviderException(name, "execution-interrupted", "timed out while the process was starting (scripted)", transient: true) { NeverStarted = neverStarted };
        }

        Interlocked.Increment(ref _codeRuns);
        if (HangExecution)
        {
            await _hanging.GetOrAdd(lease.SandboxId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            throw new ProviderException(name, ErrorCodes.Cancelled, "released while running");
        }

        return new ExecutionResult { Runtime = "scripted", Stdout = $"ran on {name}\n", ExitCode = 0, WallTimeMs = 1000 };
    }

    public Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        Released.Add(lease.SandboxId);
        if (_hanging.TryRemove(lease.SandboxId, out var hanging))
        {
            hanging.TrySetResult();
        }

        return Task.CompletedTask;
    }
}
