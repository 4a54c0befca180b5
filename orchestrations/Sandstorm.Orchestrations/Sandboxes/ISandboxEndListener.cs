using Sandstorm.Core.Contracts;

namespace Sandstorm.Orchestrations.Sandboxes;

/// <summary>
/// Told when a kept sandbox ends, after it was destroyed and before its record is signed: the API's live sandboxes end
/// their command streams with the reason and finish writing their command rows, so the provenance covers every command.
/// </summary>
public interface ISandboxEndListener
{
    Task OnEndedAsync(string tenantId, string sandboxId, SandboxStatus status, DateTimeOffset at, CancellationToken cancellationToken);
}

/// <summary>No API in this process: nothing to tell.</summary>
internal sealed class NoSandboxEndListener : ISandboxEndListener
{
    public Task OnEndedAsync(string tenantId, string sandboxId, SandboxStatus status, DateTimeOffset at, CancellationToken cancellationToken) => Task.CompletedTask;
}
