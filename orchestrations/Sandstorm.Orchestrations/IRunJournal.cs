using Sandstorm.Core.Contracts;

namespace Sandstorm.Orchestrations;

/// <summary>
/// Where a host whose store may lose acknowledged writes (the local host's Azurite saves every few seconds) keeps what it
/// acknowledged: an accepted run before its <c>202</c>, and that its code is about to start. No-op where the store is durable.
/// </summary>
public interface IRunJournal
{
    /// <summary>Records an accepted, scheduled run; returns once it is on disk.</summary>
    ValueTask AcceptedAsync(JournaledRun run, CancellationToken cancellationToken);

    /// <summary>
    /// Records that the run's code is about to start, so neither a replay nor a redelivered Execute starts it a second
    /// time; false when a start was already recorded (the code may have run: do not start it again).
    /// </summary>
    ValueTask<bool> StartingAsync(string runId, CancellationToken cancellationToken);

    /// <summary>Withdraws <see cref="StartingAsync"/> when the provider proved the code never started (it may be tried again).</summary>
    ValueTask NeverStartedAsync(string runId, CancellationToken cancellationToken);
}

/// <summary>Hosts whose store is durable when it answers: nothing to journal.</summary>
public sealed class NoRunJournal : IRunJournal
{
    public ValueTask AcceptedAsync(JournaledRun run, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask<bool> StartingAsync(string runId, CancellationToken cancellationToken) => ValueTask.FromResult(true);

    public ValueTask NeverStartedAsync(string runId, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}

/// <summary>What it takes to submit an accepted run again with the same id: the request itself and the input's fields.</summary>
public sealed record JournaledRun
{
    public required string RunId { get; init; }

    public required string TenantId { get; init; }

    public required RunRequest Request { get; init; }

    public required string RequestHash { get; init; }

    public required int DeadlineMs { get; init; }

    public required DateTimeOffset SubmittedAt { get; init; }

    public string? TraceParent { get; init; }

    /// <summary>Set on the copy that records <see cref="IRunJournal.StartingAsync"/>: the code may have started.</summary>
    public bool Started { get; init; }
}
