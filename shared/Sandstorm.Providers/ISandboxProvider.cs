using Sandstorm.Core.Contracts;

namespace Sandstorm.Providers;

/// <summary>A place that can run sandboxes: a sandbox cloud, the local machine, or edge agents.</summary>
public interface ISandboxProvider
{
    /// <summary>What the provider offers; feeds the router.</summary>
    ProviderCapabilities Capabilities { get; }

    /// <summary>What the provider offers this tenant now (edge agents differ per tenant); null when nothing.</summary>
    ValueTask<ProviderCapabilities?> GetCapabilitiesAsync(string tenantId, CancellationToken cancellationToken) =>
        ValueTask.FromResult<ProviderCapabilities?>(Capabilities);

    /// <summary>Acquires a sandbox for one run. Throws <see cref="ProviderException"/> on failure.</summary>
    Task<SandboxLease> ProvisionAsync(ProvisionRequest request, CancellationToken cancellationToken);

    /// <summary>Runs the code in the leased sandbox (synchronous providers only).</summary>
    Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken);

    /// <summary>Releases the sandbox. Idempotent: releasing twice, or a sandbox already gone, succeeds.</summary>
    Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken);

    /// <summary>What the provider charges for an execution, by its billing rules.</summary>
    decimal ComputeCost(SandboxLease lease, ExecutionSpec spec, ExecutionResult result) =>
        Capabilities.Price.CostFor(spec.Cpu, spec.MemoryMiB, result.WallTimeMs / 1000.0);
}

/// <summary>What Provision needs: the placement chosen by the router and the resources to reserve.</summary>
public sealed record ProvisionRequest(
    string RunId,
    string TenantId,
    string Runtime,
    string Region,
    string Language,
    double Cpu,
    int MemoryMiB,
    TimeSpan Timeout,
    IsolationLevel IsolationLevel);

/// <summary>A provisioned sandbox. Travels between activities, so it stays small and holds no secrets.</summary>
public sealed record SandboxLease(string Provider, string SandboxId, string Runtime, string Region)
{
    /// <summary>Provider-specific, non-secret details (e.g. a domain or an endpoint).</summary>
    public IReadOnlyDictionary<string, string>? Data { get; init; }
}

/// <summary>
/// A provider failure with a stable error code (see <see cref="Core.Errors.ErrorCodes"/>), whether retrying may help
/// (<see cref="Transient"/>), and — for an execution — whether the code provably never started (<see cref="NeverStarted"/>).
/// </summary>
public sealed class ProviderException : Exception
{
    public ProviderException(string provider, string code, string message, bool transient = false, Exception? inner = null)
        : base(message, inner)
    {
        Provider = provider;
        Code = code;
        Transient = transient;
    }

    public ProviderException()
        : this("unknown", Core.Errors.ErrorCodes.Internal, "provider failure")
    {
    }

    public ProviderException(string message)
        : this("unknown", Core.Errors.ErrorCodes.Internal, message)
    {
    }

    public ProviderException(string message, Exception innerException)
        : this("unknown", Core.Errors.ErrorCodes.Internal, message, false, innerException)
    {
    }

    public string Provider { get; }

    public string Code { get; }

    public bool Transient { get; }

    /// <summary>
    /// The execution provably did not start (nothing reached the sandbox), so trying again cannot run the code twice.
    /// Every other execution failure is final: the run is never executed again.
    /// </summary>
    public bool NeverStarted { get; init; }
}

/// <summary>A provider whose executions complete asynchronously (edge agents): Execute dispatches a job, the result arrives as an event.</summary>
public interface IDispatchingProvider : ISandboxProvider
{
    /// <summary>Queues the execution and returns its job id; the result is raised on the run as <c>job-completed:{jobId}</c>.</summary>
    Task<string> DispatchAsync(SandboxLease lease, string runId, ExecutionSpec spec, CancellationToken cancellationToken);
}
