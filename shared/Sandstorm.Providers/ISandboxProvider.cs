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

    /// <summary>
    /// Runs the code in the leased sandbox (synchronous providers only). Runs it at most once: a failure throws a
    /// <see cref="ProviderException"/> whose <see cref="ProviderException.NeverStarted"/> says whether a retry is safe.
    /// </summary>
    Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken);

    /// <summary>
    /// Releases the sandbox, and every other sandbox the provider holds for the lease's run (a create whose answer was lost).
    /// Idempotent: releasing twice, or a sandbox already gone, succeeds.
    /// </summary>
    Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken);

    /// <summary>
    /// Releases every sandbox this provider holds for a run, found by the run's tag, without a lease: for a provider
    /// whose provisioning failed (its create may still have landed). Idempotent; providers without tags do nothing.
    /// </summary>
    Task ReleaseRunAsync(string runId, string tenantId, CancellationToken cancellationToken) => Task.CompletedTask;

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
    IsolationLevel IsolationLevel)
{
    /// <summary>The run requires Shield's runtime monitoring (<c>constraints.requireShieldCoverage</c>): pick a placement that has it.</summary>
    public bool RequireShieldCoverage { get; init; }

    /// <summary>A bare-metal run: only an agent booted from this image (<c>name[@sha256:…]</c>) may take it.</summary>
    public string? BootcImage { get; init; }
}

/// <summary>A provisioned sandbox. Travels between activities, so it stays small and holds no secrets.</summary>
public sealed record SandboxLease(string Provider, string SandboxId, string Runtime, string Region)
{
    /// <summary>The run the sandbox was provisioned for: release also deletes any other sandbox tagged with it.</summary>
    public string? RunId { get; init; }

    /// <summary>The tenant the sandbox serves: calls made for it count against this tenant's circuit breaker.</summary>
    public string? TenantId { get; init; }

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

    /// <summary>True when waiting and trying again may help (429, 5xx, timeouts, a broken connection).</summary>
    public bool Transient { get; }

    /// <summary>
    /// True when the user's code provably did not start, so retrying the execution cannot run it twice: the failure came
    /// before the request that starts it was sent, that request never reached the provider (connection refused, name
    /// resolution, circuit open), or the provider refused it (a 4xx other than 408, a gRPC status the server chose).
    /// False on every failure after the start request may have reached the provider: such an execution is not retried.
    /// </summary>
    public bool NeverStarted { get; init; }

    /// <summary>The same failure, marked as one where the code provably did not start.</summary>
    public ProviderException AsNeverStarted() =>
        NeverStarted ? this : new ProviderException(Provider, Code, Message, Transient, InnerException) { NeverStarted = true };
}

/// <summary>A provider whose executions complete asynchronously (edge agents): Execute dispatches a job, the result arrives as an event.</summary>
public interface IDispatchingProvider : ISandboxProvider
{
    /// <summary>Queues the execution and returns its job id; the result is raised on the run as <c>job-completed:{jobId}</c>.</summary>
    Task<string> DispatchAsync(SandboxLease lease, string runId, ExecutionSpec spec, CancellationToken cancellationToken);
}
