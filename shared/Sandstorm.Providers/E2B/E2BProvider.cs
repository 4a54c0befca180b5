using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly.Registry;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.Health;
using Sandstorm.Providers.Resilience;

namespace Sandstorm.Providers.E2B;

/// <summary>
/// E2B: Firecracker microVM sandboxes. Control plane over REST (<c>X-API-Key</c>), execution through envd's
/// Connect process API (server-streaming <c>process.Process/Start</c>, JSON envelopes over HTTP/1.1).
/// </summary>
public sealed class E2BProvider : ISandboxProvider
{
    public const string Id = "e2b";
    public const string HttpClientName = "sandstorm-e2b";
    public const string Runtime = "firecracker";
    /// <summary>Metadata key every sandbox of a run carries: a retried provision and release find the run's sandboxes by it.</summary>
    public const string RunTag = "sandstorm.run";

    public const string TenantTag = "sandstorm.tenant";

    private const int EnvdPort = 49983;

    /// <summary>Most times a broken process stream is reattached before the execution is given up as interrupted.</summary>
    private const int MaxReattaches = 3;

    private static readonly string[] DefaultRegions = ["us-west1"];

    private readonly HttpClient _http;
    private readonly E2BOptions _options;
    private readonly CloudRest _rest;
    private readonly TimeProvider _time;
    private readonly ILogger<E2BProvider> _logger;

    // envd access tokens are secrets, so they stay in this process and never ride on the lease.
    // On a miss (another worker provisioned the sandbox) the token is fetched again from the control plane.
    private readonly ConcurrentDictionary<string, EnvdAccess> _access = new();

    public E2BProvider(
        IHttpClientFactory httpClients,
        IOptions<E2BOptions> options,
        ResiliencePipelineProvider<string> pipelines,
        ProviderHealthMonitor health,
        TimeProvider time,
        ILogger<E2BProvider> logger)
    {
        _http = httpClients.CreateClient(HttpClientName);
        _options = options.Value;
        _time = time;
        _logger = logger;
        var caller = new ProviderCaller(Id, pipelines.GetPipeline(Id), health.For(Id), time, logger);
        _rest = new CloudRest(Id, _http, caller, time, (message, _) =>
        {
            message.Headers.Add("X-API-Key", _options.ApiKey);
            return ValueTask.CompletedTask;
        });
        Capabilities = new ProviderCapabilities
        {
            Provider = Id,
            // A Firecracker microVM is hardware virtualisation: exactly the "maximum" level.
            Runtimes = [new RuntimeOffer(Runtime, IsolationLevel.Maximum)],
            Regions = _options.Regions.Count > 0 ? _options.Regions : DefaultRegions,
            Languages = [Languages.Python, Languages.JavaScript, Languages.Bash],
            MaxCpu = 8,
            MaxMemoryMiB = 8 * 1024,
            MaxTimeout = TimeSpan.FromHours(1),
            // List prices, billed per second of sandbox lifetime.
            Price = new PriceSheet { VcpuSecond = 0.000014, GibSecond = 0.0000045, GranularitySeconds = 1 },
        };
    }

    public ProviderCapabilities Capabilities { get; }

    public async Task<SandboxLease> ProvisionAsync(ProvisionRequest request, CancellationToken cancellationToken)
    {
        // A retried provision (an earlier create whose answer was lost) finds that sandbox by the run's tag and reuses it.
        if (await ReuseAsync(await ListRunAsync(request.RunId, request.TenantId, cancellationToken), request, cancellationToken) is { } reused)
        {
            return reused;
        }

        // The sandbox kills itself after this long: a safety net should release ever be missed.
        var lifetime = SandboxLifetime(request.Timeout);
        var body = new E2BNewSandbox
        {
            TemplateId = _options.Template,
            Timeout = lifetime,
            Metadata = new() { [RunTag] = request.RunId, [TenantTag] = request.TenantId },
            EnvVars = [],
            AllowInternetAccess = _options.AllowInternetAccess,
        };

        // Creating is not idempotent (a repeat could leak a second sandbox), so it is repeated only when the attempt never left.
        E2BSandbox created;
        try
        {
            created = await _rest.JsonAsync<E2BSandbox>(
                new CloudCall("create sandbox", Idempotent: false, _options.ProvisionTimeout, CloudErrorCodes.ProvisionFailed,
                    CloudCall.Request(HttpMethod.Post, _options.Endpoint("v2/sandboxes"), () => CloudRest.Json(body))) { Tenant = request.TenantId },
                cancellationToken);
        }
        catch (ProviderException ex) when (!ex.NeverStarted)
        {
            // The create may have landed although its answer was lost (a timeout, a cut connection, a 5xx after the fact):
            // look for it under the run's tag before giving up.
            var landed = await TryListRunAsync(request.RunId, request.TenantId, cancellationToken);
            if (await ReuseAsync(landed, request, cancellationToken) is { } found)
            {
                _logger.LogWarning("E2B create for run {RunId} failed ({Code}) but its sandbox {SandboxId} exists: reusing it", request.RunId, ex.Code, found.SandboxId);
                return found;
            }

            throw;
        }

        if (string.IsNullOrEmpty(created.SandboxId))
        {
            throw ProviderErrors.BadResponse(Id, "create sandbox", "no sandboxID");
        }

        var domain = string.IsNullOrEmpty(created.Domain) ? _options.Domain : created.Domain;
        _access[created.SandboxId] = new EnvdAccess(created.EnvdAccessToken, domain);
        _logger.LogInformation("E2B sandbox {SandboxId} created for run {RunId} (envd {EnvdVersion})", created.SandboxId, request.RunId, created.EnvdVersion);
        return Lease(request, created.SandboxId, domain, created.EnvdVersion, lifetime);
    }

    public async Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        if (!Capabilities.Languages.Contains(spec.Language))
        {
            throw new ProviderException(Id, Core.Errors.ErrorCodes.NotSupported, $"e2b does not run '{spec.Language}'") { NeverStarted = true };
        }

        EnvdAccess access;
        try
        {
            await ExtendLifetimeIfNeededAsync(lease, spec.Timeout, cancellationToken);
            access = await GetAccessAsync(lease, cancellationToken);
            await UploadFilesAsync(lease, access, spec, cancellationToken);
        }
        catch (ProviderException ex)
        {
            throw ExecutionFailures.BeforeStart(ex);
        }

        // Starting a process is not idempotent: repeated only when the attempt never left. After that, a broken stream is
        // reattached to the same process (by its tag), never started again. The pipeline timeout is only a backstop behind
        // our own deadline.
        try
        {
            return await _rest.Caller.RunAsync(
                "run process",
                idempotent: false,
                spec.Timeout + _options.ExecutionGrace,
                ct => RunProcessAsync(lease, access, spec, ct),
                cancellationToken,
                sampleLatency: false,
                tenant: lease.TenantId);
        }
        catch (ProviderException ex)
        {
            throw ExecutionFailures.AfterStart(Id, ex);
        }
    }

    public async Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        await KillAsync(lease.SandboxId, lease.TenantId, cancellationToken);
        if (lease.RunId is { } runId)
        {
            // Any other sandbox of the run: one whose create answer was lost, wherever it landed in time.
            await KillRunAsync(runId, lease.TenantId, except: lease.SandboxId, cancellationToken);
        }
    }

    public Task ReleaseRunAsync(string runId, string tenantId, CancellationToken cancellationToken) =>
        KillRunAsync(runId, tenantId, except: null, cancellationToken);

    private async Task KillRunAsync(string runId, string? tenant, string? except, CancellationToken cancellationToken)
    {
        foreach (var sandbox in await ListRunAsync(runId, tenant, cancellationToken))
        {
            if (sandbox.SandboxId is { Length: > 0 } id && id != except)
            {
                _logger.LogWarning("E2B sandbox {SandboxId} of run {RunId} was not the lease's: killing it too", id, runId);
                await KillAsync(id, tenant, cancellationToken);
            }
        }
    }

    private async Task KillAsync(string sandboxId, string? tenant, CancellationToken cancellationToken)
    {
        await _rest.DeleteAsync(
            new CloudCall("kill sandbox", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed,
                CloudCall.Request(HttpMethod.Delete, _options.Endpoint($"sandboxes/{Uri.EscapeDataString(sandboxId)}"))) { Tenant = tenant },
            cancellationToken);
        _access.TryRemove(sandboxId, out _);
    }

    /// <summary>The run's sandboxes, by the metadata every create carries (<c>GET /v2/sandboxes?metadata=...</c>).</summary>
    private async Task<IReadOnlyList<E2BListedSandbox>> ListRunAsync(string runId, string? tenant, CancellationToken cancellationToken)
    {
        // The filter is "key=value" with key and value URL-encoded, then encoded again as the query parameter (as the SDK sends it).
        var filter = Uri.EscapeDataString($"{Uri.EscapeDataString(RunTag)}={Uri.EscapeDataString(runId)}");
        var listed = await _rest.JsonAsync<List<E2BListedSandbox>>(
            new CloudCall("list run sandboxes", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ProvisionFailed,
                CloudCall.Request(HttpMethod.Get, _options.Endpoint($"v2/sandboxes?metadata={filter}&state=running,paused&limit=100"))) { Tenant = tenant },
            cancellationToken);

        // Only what provably carries the run's tag: a server that ignored the filter must not make us kill others.
        return listed.Where(s => s.SandboxId is { Length: > 0 } && s.Metadata?.GetValueOrDefault(RunTag) == runId).ToList();
    }

    private async Task<IReadOnlyList<E2BListedSandbox>> TryListRunAsync(string runId, string? tenant, CancellationToken cancellationToken)
    {
        try
        {
            return await ListRunAsync(runId, tenant, cancellationToken);
        }
        catch (ProviderException ex)
        {
            _logger.LogWarning(ex, "E2B: could not look for the sandboxes of run {RunId} after a failed create", runId);
            return [];
        }
    }

    /// <summary>Reuses the first running sandbox of the run and kills the others; null when there is none.</summary>
    private async Task<SandboxLease?> ReuseAsync(IReadOnlyList<E2BListedSandbox> sandboxes, ProvisionRequest request, CancellationToken cancellationToken)
    {
        var usable = sandboxes.FirstOrDefault(s => s.SandboxId is { Length: > 0 } && s.State is null or "running");
        foreach (var other in sandboxes.Where(s => s != usable && s.SandboxId is { Length: > 0 }))
        {
            await KillAsync(other.SandboxId!, request.TenantId, cancellationToken);
        }

        if (usable is null)
        {
            return null;
        }

        // Its lifetime was set for this run when it was created; set it again from now, then fetch its envd token.
        var sandboxId = usable.SandboxId!;
        var lifetime = SandboxLifetime(request.Timeout);
        await SetTimeoutAsync(sandboxId, lifetime, request.TenantId, cancellationToken);
        var detail = await _rest.JsonAsync<E2BSandbox>(
            new CloudCall("get sandbox", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ProvisionFailed,
                CloudCall.Request(HttpMethod.Get, _options.Endpoint($"sandboxes/{Uri.EscapeDataString(sandboxId)}"))) { Tenant = request.TenantId },
            cancellationToken);
        var domain = string.IsNullOrEmpty(detail.Domain) ? _options.Domain : detail.Domain;
        _access[sandboxId] = new EnvdAccess(detail.EnvdAccessToken, domain);
        _logger.LogInformation("E2B sandbox {SandboxId} of run {RunId} already exists: reusing it", sandboxId, request.RunId);
        return Lease(request, sandboxId, domain, detail.EnvdVersion, lifetime);
    }

    private SandboxLease Lease(ProvisionRequest request, string sandboxId, string domain, string? envdVersion, int lifetime) =>
        new(Id, sandboxId, Runtime, _options.RegionFor(request.Region, Capabilities.Regions))
        {
            RunId = request.RunId,
            TenantId = request.TenantId,
            Data = new Dictionary<string, string>
            {
                ["domain"] = domain,
                ["envdVersion"] = envdVersion ?? "",
                ["timeoutSeconds"] = lifetime.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
        };

    private int SandboxLifetime(TimeSpan runTimeout) =>
        (int)Math.Ceiling((runTimeout + _options.ExecutionGrace + _options.ProvisionTimeout).TotalSeconds);

    private async Task ExtendLifetimeIfNeededAsync(SandboxLease lease, TimeSpan runTimeout, CancellationToken cancellationToken)
    {
        var needed = SandboxLifetime(runTimeout);
        if (lease.Data?.TryGetValue("timeoutSeconds", out var s) == true && int.TryParse(s, out var current) && current >= needed)
        {
            return;
        }

        await SetTimeoutAsync(lease.SandboxId, needed, lease.TenantId, cancellationToken);
    }

    // Setting the timeout is idempotent (it sets, not adds), so it may be retried.
    private Task SetTimeoutAsync(string sandboxId, int seconds, string? tenant, CancellationToken cancellationToken) =>
        _rest.SendAsync(
            new CloudCall("refresh timeout", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed,
                CloudCall.Request(HttpMethod.Post, _options.Endpoint($"sandboxes/{Uri.EscapeDataString(sandboxId)}/timeout"),
                    () => CloudRest.Json(new E2BTimeoutRequest(seconds)))) { Tenant = tenant },
            cancellationToken);

    private async Task<EnvdAccess> GetAccessAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        if (_access.TryGetValue(lease.SandboxId, out var cached))
        {
            return cached;
        }

        var detail = await _rest.JsonAsync<E2BSandbox>(
            new CloudCall("get sandbox", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed,
                CloudCall.Request(HttpMethod.Get, _options.Endpoint($"sandboxes/{Uri.EscapeDataString(lease.SandboxId)}"))) { Tenant = lease.TenantId },
            cancellationToken);

        var domain = !string.IsNullOrEmpty(detail.Domain) ? detail.Domain
            : lease.Data?.GetValueOrDefault("domain") is { Length: > 0 } d ? d : _options.Domain;
        return _access[lease.SandboxId] = new EnvdAccess(detail.EnvdAccessToken, domain);
    }

    private async Task UploadFilesAsync(SandboxLease lease, EnvdAccess access, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        var files = SandboxScript.Files(spec);

        // Writing the same files again gives the same result, so the upload may be retried. envd is inside the sandbox:
        // it gets its own access token, never the team's API key.
        await _rest.SendAsync(
            new CloudCall("upload files", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed, () =>
            {
                // One multipart request for all files; each part's file name is its absolute path (envd's multi-file form).
                var form = new MultipartFormDataContent();
                foreach (var (path, content) in files)
                {
                    form.Add(SandboxScript.FilePart(content), "file", $"{_options.WorkDir.TrimEnd('/')}/{path}");
                }

                var message = new HttpRequestMessage(HttpMethod.Post, Envd(lease, access, $"files?username={Uri.EscapeDataString(_options.User)}")) { Content = form };
                AddEnvdHeaders(message, lease, access);
                return message;
            }, Authorize: false) { Tenant = lease.TenantId },
            cancellationToken);
    }

    /// <summary>
    /// Starts the process with the run's tag and follows its output. When the stream breaks, stalls or never answers, the
    /// process may be running: it is reattached by its tag (<c>process.Process/Connect</c>), never started again. envd does
    /// not replay output to a reattached client, so output produced while detached may be missing: the result is then
    /// marked truncated.
    /// </summary>
    private async Task<ExecutionResult> RunProcessAsync(SandboxLease lease, EnvdAccess access, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        var tag = ProcessTag(lease);
        var startedAt = _time.GetTimestamp();
        using var deadline = new CancellationTokenSource(spec.Timeout, _time);
        using var run = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var stream = new ProcessStream(spec.OutputLimitBytes);
        var reattaches = 0;
        try
        {
            var broken = await FollowAsync(StartRequest(lease, access, spec, tag), stream, reattaching: false, run.Token);
            while (broken is not null)
            {
                if (++reattaches > MaxReattaches)
                {
                    throw ExecutionFailures.Interrupted(Id, $"the process stream kept failing after {MaxReattaches} reattaches: {broken}");
                }

                _logger.LogWarning("E2B run {RunId} in sandbox {SandboxId}: {Reason}; reattaching to process {Tag}", lease.RunId, lease.SandboxId, broken, tag);
                stream.Reattached = true;
                broken = await FollowAsync(ConnectRequest(lease, access, spec, tag), stream, reattaching: true, run.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            // Our run timeout: a result, not a provider failure. The process is killed with the sandbox on release.
            return Result(stream, exitCode: null, startedAt, timedOut: true, oom: false);
        }

        // envd reports a kernel OOM kill as "signal: killed" with no exit status; we send no signals ourselves.
        var oom = stream.EndStatus?.Contains("killed", StringComparison.OrdinalIgnoreCase) == true && stream.ExitCode is null or 137 or -1;
        return Result(stream, oom ? null : stream.ExitCode, startedAt, timedOut: false, oom);
    }

    /// <summary>
    /// Sends a Start or Connect request and applies its events until the process ends (null), or returns why the stream
    /// broke while the process may still be running. A start the provider refused or never received throws, retry-safe.
    /// </summary>
    private async Task<string?> FollowAsync(HttpRequestMessage message, ProcessStream stream, bool reattaching, CancellationToken runToken)
    {
        using (message)
        {
            using var idle = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(runToken, idle.Token);
            var operation = reattaching ? "reattach process" : "run process";
            try
            {
                idle.CancelAfter(_options.StreamIdleTimeout);
                HttpResponseMessage response;
                try
                {
                    response = await CloudHttp.SendAsync(_http, message, Id, operation, CloudErrorCodes.ExecutionFailed, _time, linked.Token, HttpCompletionOption.ResponseHeadersRead);
                }
                catch (ProviderException ex) when (reattaching || !ex.NeverStarted)
                {
                    // The start may have reached envd (a 5xx, a cut, a timeout): the process may be running.
                    return $"{ex.Code}: {ex.Message}";
                }

                using (response)
                {
                    await using var body = await response.Content.ReadAsStreamAsync(linked.Token);
                    var reader = new ConnectEnvelopeReader(body);
                    while (true)
                    {
                        // Every envelope (data or keepalive) restarts the silence clock.
                        idle.CancelAfter(_options.StreamIdleTimeout);
                        var envelope = await reader.ReadAsync(linked.Token);
                        if (envelope is null)
                        {
                            return "the stream ended without an end-of-stream message (connection cut)";
                        }

                        var (flags, payload) = envelope.Value;
                        if ((flags & ConnectEnvelopeReader.CompressedFlag) != 0)
                        {
                            throw ProviderErrors.BadResponse(Id, operation, "compressed envelope without negotiated compression");
                        }

                        if ((flags & ConnectEnvelopeReader.EndStreamFlag) != 0)
                        {
                            ThrowIfStreamError(payload, reattaching, stream.Started);
                            return stream.Ended ? null : "the stream closed before the process ended";
                        }

                        stream.Apply(payload);
                    }
                }
            }
            catch (OperationCanceledException) when (idle.IsCancellationRequested && !runToken.IsCancellationRequested)
            {
                return $"no output or keepalive for {_options.StreamIdleTimeout}; the stream is stuck";
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException or EndOfStreamException)
            {
                return $"the stream broke ({ex.Message})";
            }
        }
    }

    private HttpRequestMessage StartRequest(SandboxLease lease, EnvdAccess access, ExecutionSpec spec, string tag)
    {
        var start = new
        {
            process = new
            {
                cmd = "/bin/bash",
                args = new[] { "-l", "-c", SandboxScript.RunCommand(spec.Language) },
                envs = spec.Environment ?? new Dictionary<string, string>(),
                cwd = _options.WorkDir,
            },
            // The handle to reattach by: the stream can break while the process goes on.
            tag,
            stdin = false,
        };
        var message = EnvdStream(lease, access, "process.Process/Start", start);
        // envd bounds the process by this (not the request): it runs on if the stream breaks, until this or the sandbox ends.
        message.Headers.Add("Connect-Timeout-Ms", ((long)(spec.Timeout + _options.ExecutionGrace).TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
        return message;
    }

    private HttpRequestMessage ConnectRequest(SandboxLease lease, EnvdAccess access, ExecutionSpec spec, string tag) =>
        EnvdStream(lease, access, "process.Process/Connect", new { process = new { tag } });

    /// <summary>A Connect server-streaming call to envd: one enveloped JSON request, keepalives asked for, envd's user and token.</summary>
    private HttpRequestMessage EnvdStream(SandboxLease lease, EnvdAccess access, string procedure, object request)
    {
        var message = new HttpRequestMessage(HttpMethod.Post, Envd(lease, access, procedure))
        {
            Version = new Version(1, 1),
            Content = new ByteArrayContent(ConnectEnvelopeReader.Frame(JsonSerializer.SerializeToUtf8Bytes(request, CloudJson.Options))),
        };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/connect+json");
        message.Headers.Add("Connect-Protocol-Version", "1");
        message.Headers.Add("Keepalive-Ping-Interval", ((int)_options.KeepaliveInterval.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
        // envd picks the user from a Basic header with an empty password.
        message.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(_options.User + ":")));
        AddEnvdHeaders(message, lease, access);
        return message;
    }

    /// <summary>The envd process tag of a run's execution; one per run (an execution is retried only when it never started).</summary>
    private static string ProcessTag(SandboxLease lease) => "sandstorm-" + (lease.RunId ?? lease.SandboxId);

    private ExecutionResult Result(ProcessStream stream, int? exitCode, long startedAt, bool timedOut, bool oom) => new()
    {
        Runtime = Runtime,
        Stdout = stream.Stdout.Text(),
        Stderr = stream.Stderr.Text(),
        // A reattached stream may have missed what the process wrote while it was detached.
        StdoutTruncated = stream.Stdout.Truncated || stream.Reattached,
        StderrTruncated = stream.Stderr.Truncated || stream.Reattached,
        ExitCode = exitCode,
        WallTimeMs = (long)_time.GetElapsedTime(startedAt).TotalMilliseconds,
        TimedOut = timedOut,
        OomKilled = oom,
    };

    /// <param name="started">Whether the stream said the process started (its start event); envd sends it only once it has.</param>
    private static void ThrowIfStreamError(byte[] payload, bool reattaching, bool started)
    {
        if (payload.Length == 0)
        {
            return;
        }

        using (var doc = ParseEnvelope(payload, "end-of-stream"))
        {
            if (!doc.RootElement.TryGetProperty("error", out var error))
            {
                return;
            }

            var code = error.TryGetProperty("code", out var c) ? c.GetString() : "unknown";
            var msg = error.TryGetProperty("message", out var m) ? m.GetString() : "";
            var text = $"e2b: process stream failed: {code}: {msg}";
            if (reattaching && code == "not_found")
            {
                // No such process: it ended (or never started) while we were detached; its result is gone.
                throw ExecutionFailures.Interrupted(Id, $"the process was no longer running when the stream was reattached, so its result was lost ({msg})");
            }

            var failure = code switch
            {
                // The sandbox went away under the process (killed, crashed, timed out at the platform).
                "unavailable" or "not_found" or "aborted" => new ProviderException(Id, CloudErrorCodes.SandboxLost, text, transient: true),
                "resource_exhausted" => new ProviderException(Id, ProviderErrors.MentionsOutOfMemory(msg ?? "") ? CloudErrorCodes.OutOfMemory : CloudErrorCodes.RateLimited, text, transient: !ProviderErrors.MentionsOutOfMemory(msg ?? "")),
                "deadline_exceeded" => new ProviderException(Id, CloudErrorCodes.Timeout, text, transient: true),
                "unauthenticated" => new ProviderException(Id, CloudErrorCodes.Unauthorized, text),
                "permission_denied" => new ProviderException(Id, CloudErrorCodes.Forbidden, text),
                _ => new ProviderException(Id, CloudErrorCodes.ExecutionFailed, text),
            };

            // envd refused the start itself (it could not launch the process: a bad directory, an unknown user, limits) before
            // any start event: nothing ran.
            var refused = code is "invalid_argument" or "permission_denied" or "unauthenticated" or "failed_precondition" or "resource_exhausted";
            throw !reattaching && !started && refused ? failure.AsNeverStarted() : failure;
        }
    }

    private static JsonDocument ParseEnvelope(byte[] payload, string what)
    {
        try
        {
            return JsonDocument.Parse(payload);
        }
        catch (JsonException ex)
        {
            throw ProviderErrors.BadResponse(Id, "run process", what + " is not JSON", ex);
        }
    }

    private Uri Envd(SandboxLease lease, EnvdAccess access, string relative)
    {
        var root = _options.SandboxUrl ?? new Uri($"https://{EnvdPort}-{lease.SandboxId}.{access.Domain}");
        return new Uri(new Uri(root.ToString().TrimEnd('/') + "/"), relative);
    }

    private static void AddEnvdHeaders(HttpRequestMessage message, SandboxLease lease, EnvdAccess access)
    {
        // The E2B edge routes by these headers when the sandbox URL is shared (and a stand-in can check them).
        message.Headers.Add("E2b-Sandbox-Id", lease.SandboxId);
        message.Headers.Add("E2b-Sandbox-Port", EnvdPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (!string.IsNullOrEmpty(access.Token))
        {
            message.Headers.Add("X-Access-Token", access.Token);
        }
    }

    private sealed record EnvdAccess(string? Token, string Domain);

    /// <summary>What the process streams have told so far, across reattaches.</summary>
    private sealed class ProcessStream(int outputLimitBytes)
    {
        public CappedOutput Stdout { get; } = new(outputLimitBytes);

        public CappedOutput Stderr { get; } = new(outputLimitBytes);

        public int? ExitCode { get; private set; }

        public string? EndStatus { get; private set; }

        public bool Ended { get; private set; }

        /// <summary>The stream said the process started (a start event).</summary>
        public bool Started { get; private set; }

        /// <summary>The stream was reattached: output written while detached may be missing.</summary>
        public bool Reattached { get; set; }

        /// <summary>Applies one StartResponse or ConnectResponse event.</summary>
        public void Apply(byte[] payload)
        {
            using var doc = ParseEnvelope(payload, "envelope");
            if (!doc.RootElement.TryGetProperty("event", out var ev) || ev.ValueKind != JsonValueKind.Object)
            {
                return;
            }

            if (ev.TryGetProperty("data", out var data))
            {
                // Proto3 JSON renders bytes as base64.
                if (data.TryGetProperty("stdout", out var o) && o.GetString() is { } so)
                {
                    Stdout.Append(Convert.FromBase64String(so));
                }

                if (data.TryGetProperty("stderr", out var e) && e.GetString() is { } se)
                {
                    Stderr.Append(Convert.FromBase64String(se));
                }

                return;
            }

            if (ev.TryGetProperty("start", out _))
            {
                Started = true;
                return;
            }

            if (ev.TryGetProperty("end", out var end))
            {
                // Proto3 JSON omits zero values: a missing exitCode is 0 when the process exited.
                var exited = end.TryGetProperty("exited", out var x) && x.ValueKind == JsonValueKind.True;
                EndStatus = end.TryGetProperty("status", out var st) ? st.GetString() : null;
                ExitCode = end.TryGetProperty("exitCode", out var c) && c.TryGetInt32(out var code) ? code : exited ? 0 : null;
                if (ExitCode is null && EndStatus is { } s && s.StartsWith("exit status ", StringComparison.Ordinal)
                    && int.TryParse(s.AsSpan("exit status ".Length), out var parsed))
                {
                    ExitCode = parsed;
                }

                Ended = true;
            }

            // keepalive carries nothing.
        }
    }
}
