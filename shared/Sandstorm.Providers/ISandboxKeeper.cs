using Sandstorm.Core.Contracts;
using Sandstorm.Core.Sandboxes;

namespace Sandstorm.Providers;

/// <summary>
/// A provider that keeps sandboxes across commands (agents' sessions). Creating and destroying go through the sandbox's
/// durable lifecycle; commands and file operations go straight to the live <see cref="ISandboxSession"/>.
/// </summary>
public interface ISandboxKeeper
{
    /// <summary>Whether sandboxes on this runtime of the provider can be kept (commands run in one sandbox over time).</summary>
    bool CanKeep(string runtime);

    /// <summary>Starts a sandbox for <paramref name="request"/>; the lease names it at the provider and holds no secrets.</summary>
    Task<SandboxLease> CreateSandboxAsync(KeptSandboxRequest request, CancellationToken cancellationToken);

    /// <summary>The live sandbox of a lease, or null when it is gone (destroyed, or its host or agent died).</summary>
    ValueTask<ISandboxSession?> GetSessionAsync(SandboxLease lease, CancellationToken cancellationToken);

    /// <summary>Destroys the sandbox and everything in it. Idempotent: a sandbox already gone is fine.</summary>
    Task DestroySandboxAsync(SandboxLease lease, CancellationToken cancellationToken);
}

/// <summary>What a kept sandbox needs at its provider: the placement chosen and the limits of the whole sandbox.</summary>
public sealed record KeptSandboxRequest(
    string SandboxId,
    string TenantId,
    string Runtime,
    string Region,
    IsolationLevel IsolationLevel,
    double Cpu,
    int MemoryMiB,
    int DiskMiB,
    TimeSpan Lifetime);
