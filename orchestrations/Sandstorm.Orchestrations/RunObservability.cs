using System.Diagnostics;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Observability;
using static Sandstorm.Core.Observability.ObservabilityNames;

namespace Sandstorm.Orchestrations;

/// <summary>
/// The spans and metrics of the run pipeline, made in the activities (never in the orchestrator, which replays): each
/// step's span is a child of the run's stored <see cref="RunTicket.TraceParent"/>, so a run is one trace across hosts and
/// retries, and a step's metrics are recorded once per execution of that step.
/// </summary>
public static class RunObservability
{
    /// <summary>Runs <paramref name="step"/> inside the run's span <paramref name="name"/>; <paramref name="describe"/> tags it and records metrics.</summary>
    public static async Task<T> TraceAsync<T>(string name, RunTicket run, Func<Task<T>> step, Action<Activity?, T> describe)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(describe);
        using var span = SandstormDiagnostics.StartRunSpan(name, run.RunId, run.TenantId, run.TraceParent);
        try
        {
            var result = await step();
            describe(span, result);
            return result;
        }
        catch (Exception e) when (SandstormDiagnostics.Record(span, e))
        {
            throw; // Never reached: Record returns false, the exception flows on untouched.
        }
    }

    public static void Routed(Activity? span, RunTicket run, RouteOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(outcome);
        if (span is null)
        {
            return;
        }

        span.SetTag(Attributes.Isolation, SandstormDiagnostics.TagOf(run.Intent.IsolationLevel));
        span.SetTag(Attributes.Language, run.Intent.Language);
        span.SetTag(Attributes.Strategy, SandstormDiagnostics.TagOf(run.Intent.Strategy));
        if (outcome.Decision is { } decision)
        {
            span.SetTag(Attributes.Chosen, decision.Chosen.Key);
            span.SetTag(Attributes.Candidates, decision.Candidates.Count);
        }
        else if (outcome.Error is { } error)
        {
            SandstormDiagnostics.Fail(span, error.Code, error.Message);
        }
    }

    /// <summary>Tags the provision span; a run that got its sandbox counts as started.</summary>
    public static void Provisioned(Activity? span, ProvisionInput input, ProvisionOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(outcome);
        span?.SetTag(Attributes.Candidate, input.Candidate.Key);
        if (outcome.Lease is { } lease)
        {
            span?.SetTag(Attributes.Provider, lease.Provider);
            span?.SetTag(Attributes.Runtime, lease.Runtime);
            span?.SetTag(Attributes.Region, lease.Region);
            SandstormDiagnostics.RunsStarted.Add(
                1,
                new KeyValuePair<string, object?>(Attributes.Provider, lease.Provider),
                new KeyValuePair<string, object?>(Attributes.Runtime, lease.Runtime),
                new KeyValuePair<string, object?>(Attributes.Isolation, SandstormDiagnostics.TagOf(input.Run.Intent.IsolationLevel)));
        }
        else if (outcome.Error is { } error)
        {
            SandstormDiagnostics.Fail(span, error.Code, error.Message);
        }
    }

    public static void Executed(Activity? span, ExecuteInput input, ExecuteOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(outcome);
        if (span is null)
        {
            return;
        }

        span.SetTag(Attributes.Provider, input.Lease.Provider);
        span.SetTag(Attributes.Runtime, outcome.Result?.Runtime ?? input.Lease.Runtime);
        if (outcome.PendingJobId is { } jobId)
        {
            span.SetTag(Attributes.JobId, jobId);
        }

        if (outcome.Result is { } result)
        {
            span.SetTag(Attributes.ExitCode, result.ExitCode);
        }
        else if (outcome.Error is { } error)
        {
            SandstormDiagnostics.Fail(span, error.Code, error.Message);
        }
    }

    public static void Monitored(Activity? span, MonitorOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        span?.SetTag(Attributes.Verdict, outcome.Verdict);
        if (outcome.Quarantine)
        {
            SandstormDiagnostics.Fail(span, "quarantined", string.Join("; ", outcome.Findings));
        }
    }

    /// <summary>Tags the settle span and records the run's outcome metrics (count, latency, execution time, cost).</summary>
    public static void Settled(Activity? span, SettleInput input, RunOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(outcome);
        var status = SandstormDiagnostics.TagOf(outcome.Status);
        var provider = input.Lease?.Provider ?? "none";
        var runtime = input.Result?.Runtime ?? input.Lease?.Runtime ?? "none";
        var tags = new TagList
        {
            { Attributes.Status, status },
            { Attributes.Provider, provider },
            { Attributes.Runtime, runtime },
        };
        SandstormDiagnostics.RunsSettled.Add(1, tags);
        SandstormDiagnostics.RunDuration.Record(Math.Max(0, (input.FinishedAt - input.Run.SubmittedAt).TotalSeconds), tags);
        if (input.Result is { } result)
        {
            SandstormDiagnostics.ExecutionDuration.Record(result.WallTimeMs / 1000.0, tags);
        }

        if (outcome.TotalCost > 0)
        {
            SandstormDiagnostics.RunCost.Add(
                (double)outcome.TotalCost,
                new KeyValuePair<string, object?>(Attributes.Provider, provider),
                new KeyValuePair<string, object?>(Attributes.SecurityTier, SandstormDiagnostics.TagOf(input.Run.Intent.SecurityTier)));
        }

        if (span is null)
        {
            return;
        }

        span.SetTag(Attributes.Status, status);
        span.SetTag(Attributes.Provider, provider);
        span.SetTag(Attributes.Runtime, runtime);
        span.SetTag(Attributes.CostUsd, (double)outcome.TotalCost);
        if (outcome.Error is { } error)
        {
            SandstormDiagnostics.Fail(span, error.Code, error.Message);
        }
    }
}
