using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Observability;
using Sandstorm.Core.Validation;
using Sandstorm.Orchestrations;
using Sandstorm.Providers;
using Sandstorm.Storage;

namespace Sandstorm.Api;

/// <summary>Submits, reads, waits for and cancels runs; the HTTP endpoints of both hosts are thin over it.</summary>
public sealed class RunService(
    RunStore runs,
    TenantStore tenants,
    RunPayloads payloads,
    PayloadStore payloadStore,
    RunCompletionNotifier notifier,
    IProviderCatalog catalog,
    IOptions<RunPipelineOptions> pipeline,
    IRunJournal journal,
    TenantRateLimiter limiter,
    TimeProvider time)
{
    /// <summary>Longest a caller may wait synchronously with <c>?wait=</c>.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

    /// <summary>How long a synchronous caller waits for a run with this timeout to settle.</summary>
    public TimeSpan SettleBudget(int timeoutMs) => TimeSpan.FromMilliseconds(pipeline.Value.DeadlineMs(timeoutMs)) + TimeSpan.FromSeconds(10);

    /// <summary>
    /// Validates and starts a run. With an idempotency key, the same key and body return the same run. A caller that will
    /// <see cref="WaitAsync"/> says so (<paramref name="waiting"/>), so its wake-up is registered before the run can settle.
    /// A caller's submission counts against the tenant's rate (429 beyond it); the batch queue's intake passes
    /// <paramref name="rateLimited"/> false, as a refused queue message would be lost, not retried.
    /// </summary>
    public async Task<(string RunId, bool Created)> SubmitAsync(
        DurableTaskClient client, string tenantId, RunRequest request, string? idempotencyKey, CancellationToken cancellationToken, bool waiting = false, bool rateLimited = true)
    {
        if (rateLimited)
        {
            await limiter.AcquireAsync(tenantId, RateLimitedAction.SubmitRun, cancellationToken);
        }

        request = RunRequestValidator.Normalize(request);
        await RequireConsentAsync(tenantId, [request], cancellationToken);
        await RequireOfferedAsync(tenantId, [request], cancellationToken);
        var hash = Hash(request);
        string runId;
        if (idempotencyKey is not null)
        {
            if (idempotencyKey.Length is 0 or > 255)
            {
                throw new SandstormException(ErrorCodes.ValidationFailed, "Idempotency-Key must be 1 to 255 characters");
            }

            runId = RunIds.FromIdempotencyKey(tenantId, idempotencyKey);
            if (await runs.GetAsync(tenantId, runId, cancellationToken) is { } existing)
            {
                return existing.RequestHash == hash
                    ? (runId, false)
                    : throw new SandstormException(ErrorCodes.Conflict, "this Idempotency-Key was already used with a different request", 409);
            }
        }
        else
        {
            runId = RunIds.New();
        }

        using var span = SandstormDiagnostics.StartSubmit(runId, tenantId);
        var now = time.GetUtcNow();

        // Row first (an insert-if-absent carrying the request's hash), then the request payload, then the orchestration.
        // Of two concurrent submissions with one Idempotency-Key only the insert's winner writes the payload, so the run
        // executes the body it was created with; the loser compares hashes (409 for another body). A failed step deletes
        // the row, so a refused run leaves nothing behind.
        var created = await runs.TryCreateAsync(
            new RunRecord { TenantId = tenantId, RunId = runId, Status = RunStatus.Queued, CreatedAt = now, RequestHash = hash },
            cancellationToken);
        if (!created)
        {
            var winner = await runs.GetAsync(tenantId, runId, cancellationToken);
            return winner is null || winner.RequestHash == hash
                ? (runId, false)
                : throw new SandstormException(ErrorCodes.Conflict, "this Idempotency-Key was already used with a different request", 409);
        }

        if (waiting)
        {
            _ = notifier.WhenSettled(runId);
        }

        RunInput? input = null;
        try
        {
            input = new RunInput
            {
                RunId = runId,
                TenantId = tenantId,
                Intent = RunIntent.Of(request),
                Request = await payloads.PutRequestAsync(tenantId, runId, request, cancellationToken),
                DeadlineMs = pipeline.Value.DeadlineMs(request.Timeout),
                SubmittedAt = now,
                TraceParent = SandstormDiagnostics.TraceParentOf(span ?? Activity.Current),
            };
            await client.ScheduleNewOrchestrationInstanceAsync(nameof(SandboxRunOrchestrator), input, new StartOrchestrationOptions(runId), cancellationToken);
        }
        catch
        {
            notifier.Forget(runId);
            await runs.DeleteAsync(tenantId, runId, CancellationToken.None);
            if (input?.Request.IsInline != true)
            {
                await payloadStore.DeletePrefixAsync($"{tenantId}/{runId}/", CancellationToken.None);
            }

            throw;
        }

        // Acknowledged only once it is on disk where the store may lose its newest writes (see IRunJournal).
        await journal.AcceptedAsync(
            new JournaledRun
            {
                RunId = runId,
                TenantId = tenantId,
                Request = request,
                RequestHash = hash,
                DeadlineMs = input.DeadlineMs,
                SubmittedAt = now,
                TraceParent = input.TraceParent,
            },
            cancellationToken);
        return (runId, true);
    }

    /// <summary>
    /// Submits a journaled run again after a crash lost it from the store: the same id, request and deadline. Does nothing
    /// when its orchestration exists (the instance id is the run id, so a run is never scheduled twice). A run whose code
    /// may have started is not started again: it is recorded as failed with <c>execution-interrupted</c>.
    /// </summary>
    /// <returns>True when the run was submitted again or recorded as interrupted.</returns>
    public async Task<bool> ReplayAsync(DurableTaskClient client, JournaledRun run, CancellationToken cancellationToken)
    {
        if (await client.GetInstanceAsync(run.RunId, cancellationToken) is not null)
        {
            return false;
        }

        if (run.Started)
        {
            var now = time.GetUtcNow();
            await runs.UpsertAsync(
                new RunRecord
                {
                    TenantId = run.TenantId,
                    RunId = run.RunId,
                    Status = RunStatus.Failed,
                    CreatedAt = run.SubmittedAt,
                    CompletedAt = now,
                    RequestHash = run.RequestHash,
                    Result = new RunResult
                    {
                        Id = run.RunId,
                        Status = RunStatus.Failed,
                        CreatedAt = run.SubmittedAt,
                        CompletedAt = now,
                        Error = new RunError(
                            ErrorCodes.ExecutionInterrupted,
                            "the local host stopped while this run's code may have been running and lost its state; it was not run again"),
                    },
                },
                cancellationToken);
            return true;
        }

        var input = new RunInput
        {
            RunId = run.RunId,
            TenantId = run.TenantId,
            Intent = RunIntent.Of(run.Request),
            Request = await payloads.PutRequestAsync(run.TenantId, run.RunId, run.Request, cancellationToken),
            DeadlineMs = run.DeadlineMs,
            SubmittedAt = run.SubmittedAt,
            TraceParent = run.TraceParent,
        };
        await runs.TryCreateAsync(
            new RunRecord { TenantId = run.TenantId, RunId = run.RunId, Status = RunStatus.Queued, CreatedAt = run.SubmittedAt, RequestHash = run.RequestHash },
            cancellationToken);
        await client.ScheduleNewOrchestrationInstanceAsync(nameof(SandboxRunOrchestrator), input, new StartOrchestrationOptions(run.RunId), cancellationToken);
        return true;
    }

    /// <summary>
    /// Refuses isolation <c>none</c> for a tenant that has not opted in (<see cref="TenantSettings.AllowUnisolated"/>):
    /// without that consent, such a request is never run less isolated than a sandbox, and nothing is persisted.
    /// </summary>
    public async Task RequireConsentAsync(string tenantId, IReadOnlyList<RunRequest> requests, CancellationToken cancellationToken)
    {
        var first = -1;
        for (var i = 0; i < requests.Count && first < 0; i++)
        {
            first = requests[i].IsolationLevel == IsolationLevel.None ? i : -1;
        }

        if (first < 0 || (await tenants.GetAsync(tenantId, cancellationToken)).AllowUnisolated)
        {
            return;
        }

        var field = requests.Count == 1 ? "isolationLevel" : $"[{first}].isolationLevel";
        throw new SandstormException(
            ErrorCodes.IsolationUnavailable,
            "isolation level 'none' runs code as a plain, unsandboxed process; this tenant has not opted in to it — use standard, strong or maximum",
            422,
            new Dictionary<string, string[]> { [field] = ["'none' needs the tenant's opt-in (allowUnisolated)"] });
    }

    /// <summary>
    /// Refuses (422 <c>not-supported</c>, naming the field) canonical requests that no provider this tenant can use could
    /// serve, before anything is persisted: a GPU (no configured provider offers one), or requirements to install (only
    /// providers whose sandboxes have network can; the local and edge runtimes run offline).
    /// </summary>
    public async Task RequireOfferedAsync(string tenantId, IReadOnlyList<RunRequest> requests, CancellationToken cancellationToken)
    {
        var gpu = IndexOf(requests, r => r.Gpu == true);
        var packages = IndexOf(requests, r => RunIntent.RequirementsOf(r.Language, r.Files) > 0);
        var bareMetal = IndexOf(requests, r => r.Deployment == Deployments.BareMetal);
        if (gpu < 0 && packages < 0 && bareMetal < 0)
        {
            return;
        }

        var offered = new List<ProviderCapabilities>();
        foreach (var provider in catalog.All)
        {
            if (await provider.GetCapabilitiesAsync(tenantId, cancellationToken) is { } capabilities)
            {
                offered.Add(capabilities);
            }
        }

        string Field(int index, string name) => requests.Count == 1 ? name : $"[{index}].{name}";
        if (gpu >= 0 && !offered.Any(c => c.Gpu))
        {
            throw new SandstormException(
                ErrorCodes.NotSupported,
                "a GPU was asked for (gpu, gpuType, constraints.gpu or constraints.requireGpu), but no GPU provider is configured; leave it out to run on CPUs",
                422,
                new Dictionary<string, string[]> { [Field(gpu, "gpu")] = ["no configured provider offers GPUs"] });
        }

        // A bare-metal run needs a live agent of this tenant booted from its image (the router checks again when it places it).
        for (var i = bareMetal; i >= 0 && i < requests.Count; i++)
        {
            if (requests[i].BootcImage is not { } image || requests[i].Deployment != Deployments.BareMetal || offered.Any(c => c.BootImages.Any(b => Deployments.Matches(image, b))))
            {
                continue;
            }

            var running = offered.SelectMany(c => c.BootImages).Select(b => $"{b.Name}@{b.Digest}").Distinct(StringComparer.Ordinal).ToList();
            throw new SandstormException(
                ErrorCodes.NoCandidate,
                $"deployment 'bare-metal': no live edge agent of this tenant was booted from bootcImage '{image}'"
                    + (running.Count > 0 ? $" (images running: {string.Join(", ", running)})" : " (no live agent reports a boot image)"),
                422,
                new Dictionary<string, string[]> { [Field(i, "bootcImage")] = [$"no live agent booted from '{image}'"] });
        }

        if (packages >= 0 && !offered.Any(c => c.Network && c.Languages.Contains(Languages.Python)))
        {
            throw new SandstormException(
                ErrorCodes.NotSupported,
                $"requirements (or a {RunRequestValidator.RequirementsFile} among files) must be installed with pip, which needs network, and no provider "
                    + $"available to this tenant has it ({string.Join(", ", offered.Select(c => c.Provider))}: sandboxes without network); "
                    + "configure a sandbox cloud (E2B, Daytona, Modal), or ship pure-Python dependencies as files",
                422,
                new Dictionary<string, string[]> { [Field(packages, "requirements")] = ["needs a placement with network; none is available"] });
        }
    }

    private static int IndexOf(IReadOnlyList<RunRequest> requests, Func<RunRequest, bool> predicate)
    {
        for (var i = 0; i < requests.Count; i++)
        {
            if (predicate(requests[i]))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>The run as the API shows it, outputs included; null when this tenant has no such run.</summary>
    public async Task<RunResult?> GetAsync(string tenantId, string runId, CancellationToken cancellationToken)
    {
        var record = await runs.GetAsync(tenantId, runId, cancellationToken);
        return record is null ? null : await ComposeAsync(record, cancellationToken);
    }

    /// <summary>
    /// The tenant's runs created since <paramref name="since"/> that <paramref name="filter"/> keeps, newest first, at most
    /// <paramref name="limit"/>, without their outputs.
    /// </summary>
    public async Task<IReadOnlyList<RunResult>> ListAsync(
        string tenantId, DateTimeOffset since, Func<RunResult, bool> filter, int limit, CancellationToken cancellationToken)
    {
        var records = await runs.ListAsync(tenantId, since, cancellationToken);
        return [.. records.Select(Summary).Where(filter).Take(limit)];
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for the run to finish; returns its latest state either way.
    /// <paramref name="justCreated"/>: the caller has just created the run with <c>waiting</c>, so its settling cannot be
    /// missed and the first read of the run table is skipped.
    /// </summary>
    public async Task<RunResult?> WaitAsync(string tenantId, string runId, TimeSpan timeout, CancellationToken cancellationToken, bool justCreated = false)
    {
        var settled = justCreated ? notifier.TakeOver(runId) : notifier.WhenSettled(runId);
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            // The notifier wakes a waiter at once when the run settles in this process; the poll only covers a run
            // settled by another instance (scaled out), so it can be slow and spare the run table.
            var poll = TimeSpan.FromMilliseconds(200);
            var read = !justCreated;
            while (true)
            {
                if (read)
                {
                    var record = await runs.GetAsync(tenantId, runId, cancellationToken);
                    if (record is null || record.Status.IsTerminal())
                    {
                        return record is null ? null : await ComposeAsync(record, cancellationToken);
                    }
                }

                read = true;
                try
                {
                    return await ComposeAsync(await settled.WaitAsync(poll, time, deadline.Token), cancellationToken);
                }
                catch (TimeoutException)
                {
                    poll = TimeSpan.FromMilliseconds(Math.Min(poll.TotalMilliseconds * 2, 1000));
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return await GetAsync(tenantId, runId, cancellationToken);
                }
            }
        }
        finally
        {
            notifier.Forget(runId);
        }
    }

    /// <summary>
    /// A run's states as they happen, after <paramref name="afterId"/>: <c>queued</c> (id 1), <c>running</c> with its
    /// placement (id 2), and the <c>result</c> (id 3, with its output). The ids are the states' order, so a client that
    /// resumes after an id gets the rest and nothing twice. Nothing when the run is not the tenant's.
    /// </summary>
    public async IAsyncEnumerable<(long Id, string Name, RunResult Run)> EventsAsync(
        string tenantId, string runId, long afterId, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var sent = afterId;
        var run = await GetAsync(tenantId, runId, cancellationToken);
        while (run is not null)
        {
            var (id, name) = run.Status switch
            {
                RunStatus.Queued => (1L, "queued"),
                RunStatus.Running => (2L, "running"),
                _ => (3L, "result"),
            };
            if (id > sent)
            {
                sent = id;
                yield return (id, name, run);
            }

            if (id == 3)
            {
                yield break;
            }

            // Wakes at once when the run settles in this process; otherwise looks again within a second (running shows then).
            run = await WaitAsync(tenantId, runId, TimeSpan.FromSeconds(1), cancellationToken);
        }
    }

    /// <summary>Asks a run to stop. False when it had already finished.</summary>
    public async Task<bool?> CancelAsync(DurableTaskClient client, string tenantId, string runId, string reason, CancellationToken cancellationToken)
    {
        var record = await runs.GetAsync(tenantId, runId, cancellationToken);
        if (record is null)
        {
            return null;
        }

        if (record.Status.IsTerminal())
        {
            return false;
        }

        await client.RaiseEventAsync(runId, RunEvents.Cancel, reason, cancellationToken);
        return true;
    }

    private async Task<RunResult> ComposeAsync(RunRecord record, CancellationToken cancellationToken)
    {
        var result = Summary(record);
        return result with
        {
            Stdout = record.Stdout is { } o ? await payloads.GetTextAsync(o, cancellationToken) : result.Stdout,
            Stderr = record.Stderr is { } e ? await payloads.GetTextAsync(e, cancellationToken) : result.Stderr,
        };
    }

    /// <summary>The run as stored, with its placement while it has no result yet; no outputs.</summary>
    private static RunResult Summary(RunRecord record)
    {
        var result = record.Result ?? new RunResult { Id = record.RunId, Status = record.Status, CreatedAt = record.CreatedAt };
        if (record.Result is null && record.Placement is { } placement && placement.Split('/') is [var provider, var runtime, var region])
        {
            result = result with { Provider = provider, Runtime = runtime, Region = region };
        }

        return result with { Status = record.Status };
    }

    private static string Hash(RunRequest request) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(request, SandstormJson.Options)));
}

/// <summary>Run ids: random, or derived from the tenant and an Idempotency-Key so a retried submission finds its run.</summary>
public static class RunIds
{
    public static string New() => "run_" + Guid.NewGuid().ToString("N")[..24];

    public static string FromIdempotencyKey(string tenantId, string key) =>
        "run_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(tenantId + "\n" + key)))[..24];
}
