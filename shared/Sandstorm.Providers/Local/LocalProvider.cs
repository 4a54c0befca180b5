using System.Collections.Concurrent;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Pricing;
using Sandstorm.Runtimes;

namespace Sandstorm.Providers.Local;

/// <summary>
/// Runs code as a plain child process on the control plane's own machine: isolation level <c>none</c> only, for trusted
/// code and development. Timeout, output caps and killing the whole process tree come from the <c>process</c> runtime.
/// Releasing a lease kills its execution if it is still running (cancel, deadline).
/// </summary>
public sealed class LocalProvider : ISandboxProvider
{
    public const string Id = "local";
    public const string Region = "local";

    private readonly ISandboxRuntime _runtime;
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new();

    public LocalProvider(ProcessRuntime runtime)
    {
        _runtime = runtime;
        Capabilities = new ProviderCapabilities
        {
            Provider = Id,
            Runtimes = [new RuntimeOffer(_runtime.Name, IsolationLevel.None)],
            Regions = [Region],
            Languages = Languages.Supported,
            Price = TierFees.EdgePrice,
        };
    }

    public ProviderCapabilities Capabilities { get; }

    public Task<SandboxLease> ProvisionAsync(ProvisionRequest request, CancellationToken cancellationToken)
    {
        if (request.IsolationLevel != IsolationLevel.None)
        {
            throw new ProviderException(Id, ErrorCodes.IsolationUnavailable, $"the local provider offers isolation level 'none' only, not '{request.IsolationLevel.ToString().ToLowerInvariant()}'");
        }

        // The lease id is the run id: a retried provision finds the same sandbox.
        return Task.FromResult(new SandboxLease(Id, request.RunId, _runtime.Name, Region));
    }

    public async Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _running[lease.SandboxId] = linked;
        try
        {
            return await _runtime.ExecuteAsync(spec, linked.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ProviderException(Id, ErrorCodes.Cancelled, "the sandbox was released while the code was running");
        }
        finally
        {
            _running.TryRemove(new KeyValuePair<string, CancellationTokenSource>(lease.SandboxId, linked));
        }
    }

    public Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        if (_running.TryRemove(lease.SandboxId, out var running))
        {
            running.Cancel();
        }

        return Task.CompletedTask;
    }
}
