using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Sandboxes;
using Sandstorm.Core.Validation;
using Sandstorm.Orchestrations;
using Sandstorm.Orchestrations.Sandboxes;
using Sandstorm.Providers;
using Sandstorm.Routing;
using Sandstorm.Storage;
using Sandstorm.Storage.Sandboxes;

namespace Sandstorm.Api.Sandboxes;

/// <summary>
/// Kept sandboxes, behind every surface: Sandstorm's <c>/v1/sandboxes</c>, E2B's wire, MCP tools and the SDKs translate into
/// this. A sandbox is placed by the same intent and router as a run; its life (expiry, end, bill, signed record) is a
/// durable orchestration; its commands and files go straight to the live session, never through the durable engine.
/// </summary>
public sealed class SandboxService(
    SandboxStore store,
    TenantStore tenants,
    IProviderCatalog catalog,
    IRunRouter router,
    RoutingInputs routing,
    TimeProvider time,
    ILogger<SandboxService> logger) : ISandboxEndListener
{
    /// <summary>Most candidates tried when starting a sandbox fails.</summary>
    public const int MaxFailover = 3;

    /// <summary>Largest file a single write or read moves.</summary>
    public const long MaxFileBytes = 100L * 1024 * 1024;

    /// <summary>Ended commands whose logs stay readable per sandbox (their rows stay for the provenance).</summary>
    public const int KeptCommandLogs = 64;

    private readonly ConcurrentDictionary<string, LiveSandbox> _live = new();
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _creating = new();

    /// <summary>
    /// Creates a sandbox: validates, checks the tenant's quota, records it, places it and starts its lifecycle. Returns it
    /// with the token its E2B-wire (envd) calls carry. A refusal leaves nothing behind.
    /// </summary>
    public async Task<(SandboxInfo Sandbox, string AccessToken)> CreateAsync(
        DurableTaskClient client, string tenantId, SandboxCreateRequest request, CancellationToken cancellationToken)
    {
        SandboxRequestValidator.ThrowIfInvalid(request);
        var settings = await tenants.GetAsync(tenantId, cancellationToken);
        var lifetime = request.Timeout ?? SandboxRequestValidator.DefaultLifetimeSeconds;
        if (lifetime > settings.MaxSandboxLifetimeSeconds)
        {
            throw Invalid("timeout", $"timeout is at most {settings.MaxSandboxLifetimeSeconds} seconds for this tenant");
        }

        var gate = _creating.GetOrAdd(tenantId, _ => new SemaphoreSlim(1, 1));
        SandboxRecord record;
        var token = "sat_" + Base64Url(RandomNumberGenerator.GetBytes(24));
        await gate.WaitAsync(cancellationToken);
        try
        {
            if (await store.CountLiveAsync(tenantId, cancellationToken) >= settings.MaxSandboxes)
            {
                throw new SandstormException(
                    ErrorCodes.QuotaExceeded,
                    $"this tenant already has {settings.MaxSandboxes} live sandboxes, its limit; end one (DELETE /v1/sandboxes/{{id}}) or wait for one to expire",
                    429)
                { RetryAfter = await SoonestExpiryAsync(tenantId, cancellationToken) };
            }

            var now = time.GetUtcNow();
            record = new SandboxRecord
            {
                TenantId = tenantId,
                SandboxId = "sbx_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10)),
                Status = SandboxStatus.Starting,
                Request = request with { EnvVars = null },
                EnvVars = request.EnvVars ?? new Dictionary<string, string>(),
                CreatedAt = now,
                ExpiresAt = now.AddSeconds(lifetime),
                AccessToken = token,
            };
            if (!await store.TryCreateAsync(record, cancellationToken))
            {
                throw new InvalidOperationException($"sandbox id {record.SandboxId} is taken");
            }
        }
        finally
        {
            gate.Release();
        }

        try
        {
            var decision = await RouteAsync(record, cancellationToken);
            await client.ScheduleNewOrchestrationInstanceAsync(
                nameof(SandboxLifecycleOrchestrator),
                new SandboxLifecycleInput(tenantId, record.SandboxId, record.ExpiresAt),
                new StartOrchestrationOptions(record.SandboxId),
                cancellationToken);
            var (placed, session) = await PlaceAsync(record, decision, cancellationToken);
            record = placed;
            _live[record.SandboxId] = new LiveSandbox(record, session, 0, store, logger);
            logger.LogInformation("Sandbox {SandboxId} of {TenantId} is up on {Provider}/{Runtime}", record.SandboxId, tenantId, record.Provider, record.Runtime);
            return (Info(record, _live[record.SandboxId]), token);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Nothing half-created stays: the record and its index go, and a lifecycle that was started ends at once.
            await store.DeleteAsync(tenantId, record.SandboxId, CancellationToken.None);
            if (await client.GetInstanceAsync(record.SandboxId, CancellationToken.None) is not null)
            {
                await client.RaiseEventAsync(record.SandboxId, SandboxEvents.End, SandboxStatus.Failed, CancellationToken.None);
            }

            throw;
        }
    }

    /// <summary>The sandbox as the API shows it; null when this tenant has no such sandbox.</summary>
    public async Task<SandboxInfo?> GetAsync(string tenantId, string sandboxId, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(tenantId, sandboxId, cancellationToken) is not var (record, _))
        {
            return null;
        }

        return Info(record, _live.GetValueOrDefault(sandboxId));
    }

    /// <summary>A sandbox's stored record (placement, token, lifetime); null when this tenant has no such sandbox.</summary>
    public async Task<SandboxRecord?> RecordAsync(string tenantId, string sandboxId, CancellationToken cancellationToken) =>
        _live.TryGetValue(sandboxId, out var live) && live.TenantId == tenantId
            ? live.Record
            : (await store.GetAsync(tenantId, sandboxId, cancellationToken))?.Record;

    /// <summary>A page of the tenant's sandboxes, filtered by metadata (every pair must match) and liveness.</summary>
    public async Task<(IReadOnlyList<SandboxInfo> Items, string? Next)> ListAsync(
        string tenantId, IReadOnlyDictionary<string, string> metadata, bool liveOnly, int pageSize, string? next, CancellationToken cancellationToken)
    {
        var items = new List<SandboxInfo>();
        var token = next;
        // A metadata filter is applied to each page of the table; pages are read until one has matches or the end.
        do
        {
            var (page, following) = await store.ListAsync(tenantId, liveOnly, pageSize, token, cancellationToken);
            items.AddRange(page
                .Where(r => metadata.All(m => r.Request.Metadata?.TryGetValue(m.Key, out var v) == true && v == m.Value))
                .Select(r => Info(r, _live.GetValueOrDefault(r.SandboxId))));
            token = following;
        }
        while (items.Count == 0 && token is not null);
        return (items, token);
    }

    /// <summary>Ends a sandbox now. Null: no such sandbox; false: it had already ended.</summary>
    public async Task<bool?> EndAsync(DurableTaskClient client, string tenantId, string sandboxId, SandboxStatus status, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (await store.GetAsync(tenantId, sandboxId, cancellationToken) is not var (record, etag))
            {
                return null;
            }

            if (record.IsOver)
            {
                return false;
            }

            // Unusable from now on, and ended once: a second request finds it ending.
            var ending = record with { EndRequested = status, EndRequestedAt = time.GetUtcNow() };
            if (!await store.TryUpdateAsync(ending, etag, cancellationToken))
            {
                continue;
            }

            if (_live.TryGetValue(sandboxId, out var live))
            {
                live.Record = ending;
            }

            await client.RaiseEventAsync(sandboxId, SandboxEvents.End, status, cancellationToken);
            return true;
        }
    }

    /// <summary>Sets the sandbox's lifetime to <paramref name="seconds"/> from now (longer or shorter), within the tenant's cap.</summary>
    public async Task<SandboxInfo> SetTimeoutAsync(DurableTaskClient client, string tenantId, string sandboxId, int seconds, CancellationToken cancellationToken)
    {
        var settings = await tenants.GetAsync(tenantId, cancellationToken);
        if (seconds < 1 || seconds > settings.MaxSandboxLifetimeSeconds)
        {
            throw Invalid("timeout", $"timeout is the new lifetime in seconds from now, 1 to {settings.MaxSandboxLifetimeSeconds} for this tenant");
        }

        for (var attempt = 0; ; attempt++)
        {
            if (await store.GetAsync(tenantId, sandboxId, cancellationToken) is not var (record, etag))
            {
                throw NotFound(sandboxId);
            }

            ThrowIfEnded(record);
            var updated = record with { ExpiresAt = time.GetUtcNow().AddSeconds(seconds) };
            if (await store.TryUpdateAsync(updated, etag, cancellationToken))
            {
                if (_live.TryGetValue(sandboxId, out var live))
                {
                    live.Record = updated;
                }

                await client.RaiseEventAsync(sandboxId, SandboxEvents.Extend, updated.ExpiresAt, cancellationToken);
                return Info(updated, _live.GetValueOrDefault(sandboxId));
            }

            if (attempt >= 5)
            {
                throw new SandstormException(ErrorCodes.Conflict, "the sandbox kept changing; try again", 409);
            }
        }
    }

    /// <summary>
    /// The live sandbox (its session and commands) of a running sandbox of this tenant. Refused clearly when it has ended
    /// or expired, or when its host or agent died (then it is recorded <c>lost</c>, never recreated empty).
    /// </summary>
    public async Task<LiveSandbox> LiveAsync(DurableTaskClient? client, string tenantId, string sandboxId, CancellationToken cancellationToken)
    {
        if (_live.TryGetValue(sandboxId, out var cached) && cached.TenantId == tenantId && cached.Session.IsAlive)
        {
            ThrowIfEnded(cached.Record);
            return cached;
        }

        if (await store.GetAsync(tenantId, sandboxId, cancellationToken) is not var (record, _))
        {
            throw NotFound(sandboxId);
        }

        ThrowIfEnded(record);
        var lease = EndSandboxActivity.LeaseOf(record);
        var session = lease is not null && catalog.All.FirstOrDefault(p => p.Capabilities.Provider == lease.Provider) is ISandboxKeeper keeper
            ? await keeper.GetSessionAsync(lease, cancellationToken)
            : null;
        if (session is null)
        {
            if (record.Status == SandboxStatus.Running)
            {
                await MarkLostAsync(client, record, cancellationToken);
            }

            throw new SandstormException(
                ErrorCodes.SandboxEnded,
                record.Status == SandboxStatus.Starting
                    ? $"sandbox '{sandboxId}' is still starting"
                    : $"sandbox '{sandboxId}' was lost: the host or agent that held it is gone; it is not recreated",
                record.Status == SandboxStatus.Starting ? 409 : 410);
        }

        var commands = (await store.CommandsAsync(tenantId, sandboxId, cancellationToken)).Count;
        return _live.GetOrAdd(sandboxId, _ => new LiveSandbox(record, session, commands, store, logger));
    }

    /// <summary>Starts a command; its log (start, output as it comes, end) is returned at once.</summary>
    public async Task<CommandStream> StartCommandAsync(string tenantId, string sandboxId, CommandRequest request, CancellationToken cancellationToken)
    {
        SandboxRequestValidator.ThrowIfInvalid(request);
        var live = await LiveAsync(null, tenantId, sandboxId, cancellationToken);
        return await StartProcessAsync(live, request, ProcessSpec.Shell(request.Cmd), request.Timeout ?? SandboxRequestValidator.DefaultCommandTimeoutMs, cancellationToken);
    }

    /// <summary>
    /// Starts a process in a live sandbox: <paramref name="arguments"/> as given (E2B's wire sends <c>/bin/bash -l -c</c>
    /// itself), with the command's own timeout (0: until the sandbox ends). <paramref name="request"/> names it.
    /// </summary>
    public async Task<CommandStream> StartProcessAsync(LiveSandbox live, CommandRequest request, IReadOnlyList<string> arguments, int timeoutMs, CancellationToken cancellationToken)
    {
        var command = new CommandStream("cmd_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), live.SandboxId, live.NextSequence(), request, time.GetUtcNow())
        {
            Arguments = arguments,
        };
        var spec = new ProcessSpec
        {
            Arguments = arguments,
            WorkingDirectory = request.Cwd,
            Environment = Environment(live.Record, request.Env),
            Stdin = request.Stdin,
        };
        ISandboxProcess process;
        try
        {
            process = await live.Session.StartProcessAsync(spec, command, cancellationToken);
        }
        catch (SandboxException e)
        {
            throw Problem(e, live.Record);
        }

        command.Attach(process);
        live.Add(command);
        live.Trim(KeptCommandLogs);
        live.QueueRow(Row(live, command));
        _ = FollowAsync(live, command, process, timeoutMs);
        return command;
    }

    /// <summary>
    /// The live sandbox behind an E2B-wire (envd) call, which carries only the sandbox's id and its token: the tenant comes
    /// from the sandbox's index row, and the token must match (null when either does not).
    /// </summary>
    public async Task<LiveSandbox?> LiveByTokenAsync(DurableTaskClient? client, string sandboxId, string? accessToken, CancellationToken cancellationToken)
    {
        if (_live.TryGetValue(sandboxId, out var cached) && Matches(cached.Record.AccessToken, accessToken) && cached.Session.IsAlive)
        {
            ThrowIfEnded(cached.Record);
            return cached;
        }

        if (await store.TenantOfAsync(sandboxId, cancellationToken) is not { } tenantId
            || await store.GetAsync(tenantId, sandboxId, cancellationToken) is not var (record, _)
            || !Matches(record.AccessToken, accessToken))
        {
            return null;
        }

        return await LiveAsync(client, tenantId, sandboxId, cancellationToken);
    }

    private static bool Matches(string? expected, string? given) =>
        expected is not null && given is not null
        && CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(expected), System.Text.Encoding.UTF8.GetBytes(given));

    /// <summary>A command of a live sandbox of this tenant.</summary>
    public async Task<CommandStream> CommandAsync(string tenantId, string sandboxId, string commandId, CancellationToken cancellationToken)
    {
        if (_live.TryGetValue(sandboxId, out var live) && live.TenantId == tenantId && live.Command(commandId) is { } command)
        {
            return command;
        }

        // Not served by this process: either no such command, or one of an ended sandbox.
        _ = await store.GetAsync(tenantId, sandboxId, cancellationToken) ?? throw NotFound(sandboxId);
        throw new SandstormException(ErrorCodes.NotFound, $"command '{commandId}' of sandbox '{sandboxId}' was not found (or its output is no longer kept)", 404);
    }

    /// <summary>The sandbox's commands: the ones this process still holds, then the recorded ones.</summary>
    public async Task<IReadOnlyList<CommandInfo>> ListCommandsAsync(string tenantId, string sandboxId, CancellationToken cancellationToken)
    {
        _ = await store.GetAsync(tenantId, sandboxId, cancellationToken) ?? throw NotFound(sandboxId);
        var held = _live.TryGetValue(sandboxId, out var live) && live.TenantId == tenantId
            ? live.Commands.ToDictionary(c => c.CommandId, c => c.ToInfo())
            : [];
        foreach (var row in await store.CommandsAsync(tenantId, sandboxId, cancellationToken))
        {
            held.TryAdd(row.CommandId, new CommandInfo
            {
                Id = row.CommandId,
                SandboxId = sandboxId,
                Pid = row.Pid,
                Cmd = row.Cmd,
                Status = row.Status,
                ExitCode = row.ExitCode,
                Signal = row.Signal,
                StartedAt = row.StartedAt,
                EndedAt = row.EndedAt,
                Error = row.Error,
            });
        }

        return [.. held.Values.OrderBy(c => c.StartedAt)];
    }

    /// <summary>Writes to a running command's stdin, and optionally closes it.</summary>
    public async Task SendInputAsync(string tenantId, string sandboxId, string commandId, ReadOnlyMemory<byte> data, bool close, CancellationToken cancellationToken)
    {
        var command = await CommandAsync(tenantId, sandboxId, commandId, cancellationToken);
        if (command.IsEnded || command.Process is not { } process)
        {
            throw new SandstormException(ErrorCodes.Conflict, $"command '{commandId}' has ended", 409);
        }

        if (!command.Request.Stdin)
        {
            throw new SandstormException(ErrorCodes.Conflict, $"command '{commandId}' was started without stdin (\"stdin\": true keeps it open)", 409);
        }

        try
        {
            if (!data.IsEmpty)
            {
                await process.SendInputAsync(data, cancellationToken);
            }

            if (close)
            {
                await process.CloseInputAsync();
            }
        }
        catch (SandboxException e)
        {
            throw Problem(e, null);
        }
    }

    /// <summary>Kills a running command and its process group. False when it had already ended.</summary>
    public async Task<bool> KillCommandAsync(string tenantId, string sandboxId, string commandId, CancellationToken cancellationToken)
    {
        var command = await CommandAsync(tenantId, sandboxId, commandId, cancellationToken);
        if (command.IsEnded || command.Process is not { } process)
        {
            return false;
        }

        command.KilledOnRequest = true;
        try
        {
            await process.SignalAsync();
        }
        catch (SandboxException)
        {
            // It ended meanwhile.
        }

        return true;
    }

    /// <summary>Marks a sandbox whose host or agent died as lost and ends its lifecycle (billed up to its last known life).</summary>
    public async Task MarkLostAsync(DurableTaskClient? client, SandboxRecord record, CancellationToken cancellationToken)
    {
        var at = time.GetUtcNow();
        if (await store.TryUpdateAsync(record with { Status = SandboxStatus.Lost, EndedAt = at, Error = new RunError(ErrorCodes.SandboxEnded, "the host or agent that held the sandbox is gone") }, null, cancellationToken)
            && client is not null)
        {
            await client.RaiseEventAsync(record.SandboxId, SandboxEvents.End, SandboxStatus.Lost, cancellationToken);
        }

        logger.LogWarning("Sandbox {SandboxId} of {TenantId} is lost: its {Provider} host is gone", record.SandboxId, record.TenantId, record.Provider);
    }

    /// <inheritdoc/>
    public async Task OnEndedAsync(string tenantId, string sandboxId, SandboxStatus status, DateTimeOffset at, CancellationToken cancellationToken)
    {
        if (!_live.TryRemove(sandboxId, out var live))
        {
            return;
        }

        live.EndReason = status switch
        {
            SandboxStatus.Expired => $"the sandbox expired at {at:O}",
            SandboxStatus.Stopped => "the sandbox was stopped",
            SandboxStatus.Quarantined => "the sandbox was quarantined by Shield",
            SandboxStatus.Lost => "the sandbox was lost with its host",
            _ => "the sandbox ended",
        };

        // The session is gone now: its processes' exits arrive as "the sandbox ended"; wait for them to be recorded.
        await Task.WhenAll(live.Commands.Select(c => c.Process?.Exited ?? Task.FromResult(new ProcessExit(null, null))).Select(t => t.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default)));
        await live.CloseAsync();
    }

    /// <summary>The environment of a command: the sandbox user's, the sandbox's variables, the command's own.</summary>
    public static Dictionary<string, string> Environment(SandboxRecord record, IReadOnlyDictionary<string, string>? own)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ["HOME"] = "/home/user",
            ["USER"] = "user",
            ["LOGNAME"] = "user",
            ["SHELL"] = "/bin/bash",
            ["LANG"] = "C.UTF-8",
            ["TMPDIR"] = "/tmp",
        };
        foreach (var (key, value) in record.EnvVars)
        {
            env[key] = value;
        }

        foreach (var (key, value) in own ?? new Dictionary<string, string>())
        {
            env[key] = value;
        }

        return env;
    }

    /// <summary>The problem a sandbox's refusal becomes (file operations, commands).</summary>
    public static SandstormException Problem(SandboxException e, SandboxRecord? record) => e.Code switch
    {
        SandboxErrors.NotFound => new(ErrorCodes.NotFound, e.Message, 404),
        SandboxErrors.Exists => new(ErrorCodes.Conflict, e.Message, 409),
        SandboxErrors.Outside => new(ErrorCodes.PathOutside, e.Message, 400, new Dictionary<string, string[]> { ["path"] = [e.Message] }),
        SandboxErrors.TooLarge => new(ErrorCodes.PayloadTooLarge, e.Message, 413),
        SandboxErrors.NoSpace => new(ErrorCodes.NoSpace, e.Message + " (the sandbox's disk is full)", 507),
        SandboxErrors.Denied => new(ErrorCodes.Forbidden, e.Message, 403),
        SandboxErrors.NoStdin => new(ErrorCodes.Conflict, e.Message, 409),
        SandboxErrors.Gone => new(ErrorCodes.SandboxEnded, record is null ? e.Message : EndedMessage(record), 410),
        SandboxErrors.Io => new(ErrorCodes.Internal, e.Message, 500),
        _ => new(ErrorCodes.ValidationFailed, e.Message, 400),
    };

    private async Task<RouteDecision> RouteAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        var request = record.Request;
        var workload = new Workload
        {
            Language = Languages.Bash,
            Cpu = request.Cpu,
            MemoryMiB = request.Memory,
            TimeoutMs = (int)Math.Min(int.MaxValue, (record.ExpiresAt - record.CreatedAt).TotalMilliseconds),
            IsolationLevel = request.IsolationLevel,
            Stateful = true,
            Strategy = request.Strategy,
            Constraints = request.Constraints,
            RuntimePreference = request.RuntimePreference,
        };

        // Only providers (and runtimes) that can keep a sandbox are candidates, at no less isolation than asked.
        var context = await routing.ContextAsync(
            record.SandboxId,
            record.TenantId,
            workload,
            (provider, offer) => provider is ISandboxKeeper keeper && offer.Runtimes.Where(r => keeper.CanKeep(r.Name)).ToList() is { Count: > 0 } kept
                ? offer with { Runtimes = kept, MaxTimeout = TimeSpan.MaxValue }
                : null,
            cancellationToken);
        try
        {
            return await router.RouteAsync(context, cancellationToken);
        }
        catch (NoCandidateException e)
        {
            throw new SandstormException(e.Code, "no place can keep this sandbox: " + e.Message, 422);
        }
    }

    private async Task<(SandboxRecord Record, ISandboxSession Session)> PlaceAsync(SandboxRecord record, RouteDecision decision, CancellationToken cancellationToken)
    {
        var failures = new List<string>();
        foreach (var candidate in decision.Candidates.Where(c => c.Rejected is null).Take(MaxFailover))
        {
            if (catalog.All.FirstOrDefault(p => p.Capabilities.Provider == candidate.Provider) is not ISandboxKeeper keeper)
            {
                continue;
            }

            SandboxLease? lease = null;
            try
            {
                lease = await keeper.CreateSandboxAsync(
                    new KeptSandboxRequest(
                        record.SandboxId,
                        record.TenantId,
                        candidate.Runtime,
                        candidate.Region,
                        record.Request.IsolationLevel,
                        record.Request.Cpu,
                        record.Request.Memory,
                        record.Request.Disk,
                        record.ExpiresAt - record.CreatedAt),
                    cancellationToken);
                var session = await keeper.GetSessionAsync(lease, cancellationToken)
                    ?? throw new ProviderException(candidate.Provider, ErrorCodes.ProvisionFailed, "the sandbox ended as soon as it started");
                var placed = record with
                {
                    Status = SandboxStatus.Running,
                    Provider = lease.Provider,
                    ProviderSandboxId = lease.SandboxId,
                    Runtime = lease.Runtime,
                    Region = lease.Region,
                    LeaseData = lease.Data,
                    Route = decision with { Chosen = candidate },
                    ReadyAt = time.GetUtcNow(),
                };
                if (!await store.TryUpdateAsync(placed, null, cancellationToken))
                {
                    throw new InvalidOperationException($"sandbox {record.SandboxId} disappeared while it was placed");
                }

                return (placed, session);
            }
            catch (ProviderException e)
            {
                if (lease is not null)
                {
                    await keeper.DestroySandboxAsync(lease, CancellationToken.None);
                }

                failures.Add($"{candidate.Key}: {e.Message}");
                logger.LogWarning("Sandbox {SandboxId}: starting on {Candidate} failed: {Message}", record.SandboxId, candidate.Key, e.Message);
            }
        }

        throw new SandstormException(ErrorCodes.ProvisionFailed, $"the sandbox could not be started on any candidate: {string.Join("; ", failures)}", 503);
    }

    // Waits for the command to end (or its own timeout), records how it ended, and writes its row.
    private async Task FollowAsync(LiveSandbox live, CommandStream command, ISandboxProcess process, int timeoutMs)
    {
        var timedOut = false;
        if (timeoutMs > 0)
        {
            try
            {
                await process.Exited.WaitAsync(TimeSpan.FromMilliseconds(timeoutMs), time);
            }
            catch (TimeoutException)
            {
                timedOut = true;
                try
                {
                    await process.SignalAsync();
                }
                catch (SandboxException)
                {
                }
            }
        }

        ProcessExit exit;
        try
        {
            exit = await process.Exited;
        }
        catch (SandboxException)
        {
            exit = new ProcessExit(null, null) { SandboxEnded = true };
        }

        var (status, error) = timedOut ? ("timed_out", $"command timed out after {FormatDuration(timeoutMs)} and was killed")
            : exit.SandboxEnded ? ("sandbox_ended", live.EndReason ?? EndedMessage(live.Record))
            : command.KilledOnRequest ? ("killed", "killed on request")
            : exit.Signal is { } signal ? ("killed", $"killed by signal {signal}")
            : ("exited", (string?)null);
        command.Ended(new CommandEnd(status, exit.Code, exit.Signal, error, time.GetUtcNow()));
        live.QueueRow(Row(live, command));
    }

    private static SandboxCommandRecord Row(LiveSandbox live, CommandStream command)
    {
        var (stdout, stderr) = command.Digests();
        var end = command.End;
        return new SandboxCommandRecord
        {
            TenantId = live.TenantId,
            SandboxId = live.SandboxId,
            CommandId = command.CommandId,
            Sequence = command.Sequence,
            Pid = command.Pid,
            Cmd = command.Request.Cmd.Length > 4096 ? command.Request.Cmd[..4096] : command.Request.Cmd,
            CmdSha256 = RunIntent.Sha256Hex(command.Request.Cmd),
            Cwd = command.Request.Cwd,
            Status = end?.Status ?? "running",
            ExitCode = end?.ExitCode,
            Signal = end?.Signal,
            StartedAt = command.StartedAt,
            EndedAt = end?.At,
            StdoutSha256 = stdout,
            StdoutBytes = command.StdoutBytes,
            StderrSha256 = stderr,
            StderrBytes = command.StderrBytes,
            Error = end?.Error,
        };
    }

    private async Task<TimeSpan> SoonestExpiryAsync(string tenantId, CancellationToken cancellationToken)
    {
        var (live, _) = await store.ListAsync(tenantId, liveOnly: true, 1000, null, cancellationToken);
        var soonest = live.Count == 0 ? time.GetUtcNow().AddSeconds(1) : live.Min(r => r.ExpiresAt);
        return TimeSpan.FromSeconds(Math.Max(1, Math.Ceiling((soonest - time.GetUtcNow()).TotalSeconds)));
    }

    private void ThrowIfEnded(SandboxRecord record)
    {
        if (record.IsOver || record.ExpiresAt <= time.GetUtcNow())
        {
            throw new SandstormException(ErrorCodes.SandboxEnded, EndedMessage(record), 410);
        }
    }

    private static string EndedMessage(SandboxRecord record) => record.Status.IsEnded() ? EndedMessage(record, record.Status, record.EndedAt) : EndedMessage(record, record.EndRequested ?? SandboxStatus.Expired, record.EndRequestedAt);

    private static string EndedMessage(SandboxRecord record, SandboxStatus status, DateTimeOffset? at) => status switch
    {
        SandboxStatus.Lost => $"sandbox '{record.SandboxId}' was lost: the host or agent that held it is gone",
        SandboxStatus.Stopped => $"sandbox '{record.SandboxId}' was stopped at {at:O}",
        SandboxStatus.Quarantined => $"sandbox '{record.SandboxId}' was quarantined by Shield at {at:O}",
        SandboxStatus.Failed => $"sandbox '{record.SandboxId}' failed to start",
        _ => $"sandbox '{record.SandboxId}' expired at {(at ?? record.ExpiresAt):O}",
    };

    private static SandboxInfo Info(SandboxRecord record, LiveSandbox? live) => new()
    {
        Id = record.SandboxId,
        Status = record.Status,
        Provider = record.Provider,
        Runtime = record.Runtime,
        Region = record.Region,
        IsolationLevel = record.Request.IsolationLevel,
        SecurityTier = record.Request.SecurityTier,
        Template = record.Request.Template,
        Metadata = record.Request.Metadata ?? new Dictionary<string, string>(),
        Cpu = record.Request.Cpu,
        Memory = record.Request.Memory,
        Disk = record.Request.Disk,
        CreatedAt = record.CreatedAt,
        ExpiresAt = live?.Record.ExpiresAt ?? record.ExpiresAt,
        EndedAt = record.EndedAt,
        Commands = Math.Max(record.Commands, live?.CommandCount ?? 0),
        Cost = record.Cost,
        Route = record.Route,
        Provenance = record.Provenance,
        Error = record.Error,
    };

    private static string FormatDuration(int ms) =>
        ms % 1000 == 0 ? $"{ms / 1000} s" : $"{ms} ms";

    private static SandstormException NotFound(string sandboxId) => new(ErrorCodes.NotFound, $"sandbox '{sandboxId}' was not found", 404);

    private static SandstormException Invalid(string field, string message) =>
        new(ErrorCodes.ValidationFailed, message, 400, new Dictionary<string, string[]> { [field] = [message] });

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
