using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Orchestrations.Activities;
using Sandstorm.Providers;

namespace Sandstorm.Orchestrations;

/// <summary>
/// One run: Route → Provision (failing over along the route) → Execute → Monitor → Settle.
/// A durable timer bounds the whole run and a <see cref="RunEvents.Cancel"/> event cancels it; whatever happens,
/// Settle runs last and releases the sandbox. Deterministic: all time, ids and I/O come through the context.
/// </summary>
public static class SandboxRunOrchestrator
{
    /// <summary>Most candidates tried when provisioning fails.</summary>
    public const int MaxFailover = 3;

    /// <summary>Most tries of an execution that provably never started (<see cref="ExecuteOutcome.NeverStarted"/>).</summary>
    public const int MaxExecuteAttempts = 3;

    /// <summary>Registers the orchestrator. Kept beside it: the Durable analyzers follow the method only within one file.</summary>
    public static void Register(DurableTaskRegistry registry) =>
        registry.AddOrchestratorFunc<RunInput, RunOutcome>(nameof(SandboxRunOrchestrator), RunAsync);

    public static async Task<RunOutcome> RunAsync(TaskOrchestrationContext context, RunInput input)
    {
        var log = context.CreateReplaySafeLogger(nameof(SandboxRunOrchestrator));
        var startedAt = new DateTimeOffset(context.CurrentUtcDateTime, TimeSpan.Zero);
        using var timerCancellation = new CancellationTokenSource();
        var deadline = context.CreateTimer(context.CurrentUtcDateTime + TimeSpan.FromMilliseconds(input.DeadlineMs), timerCancellation.Token);
        var cancel = context.WaitForExternalEvent<string>(RunEvents.Cancel);
        var race = new Race(deadline, cancel);

        var settle = new SettleInput { Run = input.ToTicket(), Status = RunStatus.Failed, StartedAt = startedAt, FinishedAt = startedAt };
        try
        {
            settle = await RunStepsAsync(context, input, race, settle, log);
        }
        catch (TaskFailedException e)
        {
            log.LogError("Run {RunId} failed in {Task}: {Message}", input.RunId, e.TaskName, e.FailureDetails.ErrorMessage);
            settle = settle with { Status = RunStatus.Failed, Error = new RunError(ErrorCodes.Internal, $"{e.TaskName} failed: {e.FailureDetails.ErrorMessage}") };
        }

        if (!deadline.IsCompleted)
        {
            timerCancellation.Cancel();
        }

        settle = settle with { FinishedAt = new DateTimeOffset(context.CurrentUtcDateTime, TimeSpan.Zero) };
        var outcome = await context.CallActivityAsync<RunOutcome>(nameof(SettleActivity), settle, RetryPolicies.Settle);
        log.LogInformation("Run {RunId} settled: {Status}, {Total} USD", input.RunId, outcome.Status, outcome.TotalCost);
        return outcome;
    }

    private static async Task<SettleInput> RunStepsAsync(TaskOrchestrationContext context, RunInput input, Race race, SettleInput settle, ILogger log)
    {
        // 1. Route
        var ticket = settle.Run;
        var (routeStop, route) = await race.Run(context.CallActivityAsync<RouteOutcome>(nameof(RouteActivity), ticket));
        if (routeStop is not null)
        {
            return settle with { Status = routeStop.Value.Status, Error = routeStop.Value.Error };
        }

        if (route!.Decision is null)
        {
            return settle with { Status = RunStatus.Failed, Error = route.Error };
        }

        settle = settle with { Route = route.Decision };

        // 2. Provision, failing over along the route.
        SandboxLease? lease = null;
        var failures = new List<string>();
        foreach (var candidate in route.Decision.Candidates.Where(c => c.Rejected is null).Take(MaxFailover))
        {
            try
            {
                var step = context.CallActivityAsync<ProvisionOutcome>(
                    nameof(ProvisionActivity), new ProvisionInput(ticket, candidate), RetryPolicies.Provision);
                var (stop, provisioned) = await race.Run(step);
                if (stop is not null)
                {
                    // The provider may still hand out a sandbox after the stop: wait for it so Settle releases it.
                    var late = await OutcomeOrNull(step);
                    return settle with { Status = stop.Value.Status, Error = stop.Value.Error, Lease = late?.Lease };
                }

                if (provisioned!.Lease is not null)
                {
                    lease = provisioned.Lease;
                    break;
                }

                failures.Add($"{candidate.Key}: {provisioned.Error?.Message}");
            }
            catch (TaskFailedException e)
            {
                failures.Add($"{candidate.Key}: {e.FailureDetails.ErrorMessage}");
            }

            log.LogWarning("Run {RunId}: provisioning on {Candidate} failed, failing over", input.RunId, candidate.Key);
        }

        if (lease is null)
        {
            return settle with
            {
                Status = RunStatus.Failed,
                Error = new RunError(ErrorCodes.ProvisionFailed, $"provisioning failed on every candidate: {string.Join("; ", failures)}"),
            };
        }

        settle = settle with { Lease = lease };

        // 3. Execute: a cloud provider answers in the activity; an edge agent answers with an event. Never retried once the
        // code may have started: only an outcome that proves it never started is tried again (with a short backoff).
        ExecuteOutcome? executed = null;
        for (var attempt = 1; attempt <= MaxExecuteAttempts; attempt++)
        {
            (var execStop, executed) = await race.Run(context.CallActivityAsync<ExecuteOutcome>(
                nameof(ExecuteActivity), new ExecuteInput(ticket, lease, input.Request)));
            if (execStop is not null)
            {
                return settle with { Status = execStop.Value.Status, Error = execStop.Value.Error };
            }

            if (!executed!.NeverStarted || attempt == MaxExecuteAttempts)
            {
                break;
            }

            log.LogWarning("Run {RunId}: execution never started ({Message}); trying again", input.RunId, executed.Error?.Message);
            using var backoff = new CancellationTokenSource();
            var timer = context.CreateTimer(TimeSpan.FromMilliseconds(250 * attempt), backoff.Token);
            var backoffStop = await race.Wait(timer);
            if (!timer.IsCompleted)
            {
                backoff.Cancel();
            }

            if (backoffStop is not null)
            {
                return settle with { Status = backoffStop.Value.Status, Error = backoffStop.Value.Error };
            }
        }

        if (executed!.PendingJobId is { } jobId)
        {
            var (jobStop, jobOutcome) = await race.Run(context.WaitForExternalEvent<ExecuteOutcome>(RunEvents.JobCompleted + ":" + jobId));
            if (jobStop is not null)
            {
                return settle with { Status = jobStop.Value.Status, Error = jobStop.Value.Error };
            }

            executed = jobOutcome!;
        }

        if (executed.Result is null)
        {
            return settle with { Status = RunStatus.Failed, Error = executed.Error ?? new RunError(ErrorCodes.ExecutionFailed, "execution failed") };
        }

        settle = settle with { Result = executed.Result, Status = StatusOf(executed.Result), Error = ErrorOf(executed.Result) };

        // 4. Monitor
        var (monitorStop, monitor) = await race.Run(context.CallActivityAsync<MonitorOutcome>(
            nameof(MonitorActivity), new MonitorInput(ticket, lease, executed.Result), RetryPolicies.Monitor));
        if (monitorStop is not null)
        {
            return settle with { Status = monitorStop.Value.Status, Error = monitorStop.Value.Error };
        }

        settle = settle with { Monitor = monitor };
        if (monitor!.Quarantine)
        {
            settle = settle with
            {
                Status = RunStatus.Quarantined,
                Error = new RunError("quarantined", $"quarantined by Shield: {string.Join("; ", monitor.Findings)}"),
            };
        }

        return settle;
    }

    private static async Task<T?> OutcomeOrNull<T>(Task<T> step)
        where T : class
    {
        try
        {
            return await step;
        }
        catch (TaskFailedException)
        {
            return null;
        }
    }

    private static RunStatus StatusOf(ExecutionSummary r) =>
        r.TimedOut ? RunStatus.TimedOut : r.ExitCode == 0 && !r.OomKilled ? RunStatus.Succeeded : RunStatus.Failed;

    private static RunError? ErrorOf(ExecutionSummary r) =>
        r.TimedOut ? new RunError(ErrorCodes.RunTimedOut, $"the code ran longer than its timeout and was killed after {r.WallTimeMs} ms")
        : r.OomKilled ? new RunError("oom-killed", "the code exceeded its memory limit and was killed")
        : r.ExitCode is not 0 ? new RunError("nonzero-exit", $"the code exited with {(r.ExitCode is { } c ? c.ToString(System.Globalization.CultureInfo.InvariantCulture) : "a signal")}")
        : null;

    /// <summary>Races each step against the run's deadline timer and its cancel event.</summary>
    private sealed class Race(Task deadline, Task<string> cancel)
    {
        public async Task<((RunStatus Status, RunError Error)? Stop, T? Value)> Run<T>(Task<T> step)
        {
            var stop = await Wait(step);
            return stop is null ? (null, await step) : (stop, default);
        }

        /// <summary>Waits for <paramref name="step"/>, the deadline or a cancel; null when the step finished first.</summary>
        public async Task<(RunStatus Status, RunError Error)?> Wait(Task step)
        {
            var winner = await Task.WhenAny(step, deadline, cancel);
            if (winner == step)
            {
                return null;
            }

            return winner == cancel
                ? (RunStatus.Cancelled, new RunError(ErrorCodes.Cancelled, "cancelled: " + cancel.Result))
                : (RunStatus.TimedOut, new RunError(ErrorCodes.RunTimedOut, "the run exceeded its deadline (timeout plus provisioning budget)"));
        }
    }
}
