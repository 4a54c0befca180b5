using Microsoft.DurableTask;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Orchestrations.Sandboxes;

/// <summary>Input of a sandbox's lifecycle orchestration (instance id = sandbox id).</summary>
public sealed record SandboxLifecycleInput(string TenantId, string SandboxId, DateTimeOffset ExpiresAt);

/// <summary>External events of a sandbox's lifecycle.</summary>
public static class SandboxEvents
{
    /// <summary>The lifetime changed (<c>POST .../timeout</c>): the payload is the new expiry.</summary>
    public const string Extend = "extend";

    /// <summary>End it now: the payload is the status it ends with (stopped, lost, quarantined).</summary>
    public const string End = "end";
}

/// <summary>
/// A kept sandbox's life, durably: a timer at its expiry, re-armed when the lifetime changes, and an end on request.
/// Whatever ends it, the end runs once: destroy at the provider, bill the seconds of life, sign the record of every
/// command. The durable engine is never on a command's path; it only owns the sandbox's life, so a host restart keeps
/// every sandbox's record, expiry and bill. An orchestration, not an entity: it needs a durable timer, and the local
/// host's engine (the Durable Task sidecar over DTFx) runs orchestrations reliably where entity support is uncertain.
/// </summary>
public static class SandboxLifecycleOrchestrator
{
    public static void Register(DurableTaskRegistry registry) =>
        registry.AddOrchestratorFunc<SandboxLifecycleInput, SandboxStatus>(nameof(SandboxLifecycleOrchestrator), RunAsync);

    public static async Task<SandboxStatus> RunAsync(TaskOrchestrationContext context, SandboxLifecycleInput input)
    {
        using var timerCancellation = new CancellationTokenSource();
        var expiry = context.CreateTimer(input.ExpiresAt.UtcDateTime, timerCancellation.Token);
        var extend = context.WaitForExternalEvent<DateTimeOffset>(SandboxEvents.Extend);
        var end = context.WaitForExternalEvent<SandboxStatus>(SandboxEvents.End);
        var winner = await Task.WhenAny(expiry, extend, end);
        if (!expiry.IsCompleted)
        {
            timerCancellation.Cancel();
        }

        if (winner == extend)
        {
            // A fresh history per change of lifetime, so a long-lived sandbox's history stays small.
            context.ContinueAsNew(input with { ExpiresAt = extend.Result }, preserveUnprocessedEvents: true);
            return SandboxStatus.Running;
        }

        var ending = new EndSandboxInput(input.TenantId, input.SandboxId, winner == end ? end.Result : SandboxStatus.Expired, new DateTimeOffset(context.CurrentUtcDateTime, TimeSpan.Zero));
        var outcome = await context.CallActivityAsync<EndSandboxOutcome>(nameof(EndSandboxActivity), ending, RetryPolicies.Settle);
        if (outcome.StillRunningUntil is { } later)
        {
            // The lifetime was extended after the timer was set (the extend event is on its way, or was lost with a host).
            context.ContinueAsNew(input with { ExpiresAt = later }, preserveUnprocessedEvents: true);
            return SandboxStatus.Running;
        }

        return outcome.Status;
    }
}
