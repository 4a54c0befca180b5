using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes;

/// <summary>One way of running an <see cref="ExecutionSpec"/> on this machine (plain process, bwrap, runc, podman, gVisor, microVM).</summary>
public interface ISandboxRuntime
{
    /// <summary>Stable runtime name: process, bwrap, runc, podman, gvisor, qemu-microvm.</summary>
    string Name { get; }

    /// <summary>Isolation level this runtime provides when it works.</summary>
    IsolationLevel Isolation { get; }

    /// <summary>Whether the runtime works on this machine, and why not; the result is cached for the process.</summary>
    Task<RuntimeProbe> ProbeAsync(CancellationToken ct);

    /// <summary>Runs one sandbox to completion; nothing of it is left on the host afterwards, whatever the outcome.</summary>
    Task<ExecutionResult> ExecuteAsync(ExecutionSpec spec, CancellationToken ct);
}
