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
    private const int EnvdPort = 49983;

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
            // Sandboxes reach the internet: requirements are installed with pip.
            Network = true,
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
        // The sandbox kills itself after this long: a safety net should release ever be missed.
        var lifetime = SandboxLifetime(request.Timeout);
        var body = new E2BNewSandbox
        {
            TemplateId = _options.Template,
            Timeout = lifetime,
            Metadata = new() { ["sandstorm.run"] = request.RunId, ["sandstorm.tenant"] = request.TenantId },
            EnvVars = [],
            AllowInternetAccess = _options.AllowInternetAccess,
        };

        // Creating is not idempotent (a retry could leak a second sandbox), so it is never retried here.
        var created = await _rest.JsonAsync<E2BSandbox>(
            new CloudCall("create sandbox", Idempotent: false, _options.ProvisionTimeout, CloudErrorCodes.ProvisionFailed,
                CloudCall.Request(HttpMethod.Post, _options.Endpoint("v2/sandboxes"), () => CloudRest.Json(body))),
            cancellationToken);

        if (string.IsNullOrEmpty(created.SandboxId))
        {
            throw ProviderErrors.BadResponse(Id, "create sandbox", "no sandboxID");
        }

        var domain = string.IsNullOrEmpty(created.Domain) ? _options.Domain : created.Domain;
        _access[created.SandboxId] = new EnvdAccess(created.EnvdAccessToken, domain);
        _logger.LogInformation("E2B sandbox {SandboxId} created for run {RunId} (envd {EnvdVersion})", created.SandboxId, request.RunId, created.EnvdVersion);

        return new SandboxLease(Id, created.SandboxId, Runtime, _options.RegionFor(request.Region, Capabilities.Regions))
        {
            Data = new Dictionary<string, string>
            {
                ["domain"] = domain,
                ["envdVersion"] = created.EnvdVersion ?? "",
                ["timeoutSeconds"] = lifetime.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
        };
    }

    public async Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        if (!Capabilities.Languages.Contains(spec.Language))
        {
            throw new ProviderException(Id, Core.Errors.ErrorCodes.NotSupported, $"e2b does not run '{spec.Language}'");
        }

        await ExtendLifetimeIfNeededAsync(lease, spec.Timeout, cancellationToken);
        var access = await GetAccessAsync(lease, cancellationToken);
        await UploadFilesAsync(lease, access, spec, cancellationToken);

        // Starting a process is not idempotent: no retry. The pipeline timeout is only a backstop behind our own deadline.
        return await _rest.Caller.RunAsync(
            "run process",
            idempotent: false,
            spec.Timeout + _options.ExecutionGrace,
            ct => RunProcessAsync(lease, access, spec, ct),
            cancellationToken,
            sampleLatency: false);
    }

    public async Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        await _rest.DeleteAsync(
            new CloudCall("kill sandbox", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed,
                CloudCall.Request(HttpMethod.Delete, _options.Endpoint($"sandboxes/{Uri.EscapeDataString(lease.SandboxId)}"))),
            cancellationToken);
        _access.TryRemove(lease.SandboxId, out _);
    }

    private int SandboxLifetime(TimeSpan runTimeout) =>
        (int)Math.Ceiling((runTimeout + _options.ExecutionGrace + _options.ProvisionTimeout).TotalSeconds);

    private async Task ExtendLifetimeIfNeededAsync(SandboxLease lease, TimeSpan runTimeout, CancellationToken cancellationToken)
    {
        var needed = SandboxLifetime(runTimeout);
        if (lease.Data?.TryGetValue("timeoutSeconds", out var s) == true && int.TryParse(s, out var current) && current >= needed)
        {
            return;
        }

        // Setting the timeout is idempotent (it sets, not adds), so it may be retried.
        await _rest.SendAsync(
            new CloudCall("refresh timeout", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed,
                CloudCall.Request(HttpMethod.Post, _options.Endpoint($"sandboxes/{Uri.EscapeDataString(lease.SandboxId)}/timeout"),
                    () => CloudRest.Json(new E2BTimeoutRequest(needed)))),
            cancellationToken);
    }

    private async Task<EnvdAccess> GetAccessAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        if (_access.TryGetValue(lease.SandboxId, out var cached))
        {
            return cached;
        }

        var detail = await _rest.JsonAsync<E2BSandbox>(
            new CloudCall("get sandbox", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed,
                CloudCall.Request(HttpMethod.Get, _options.Endpoint($"sandboxes/{Uri.EscapeDataString(lease.SandboxId)}"))),
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
            }, Authorize: false),
            cancellationToken);
    }

    private async Task<ExecutionResult> RunProcessAsync(SandboxLease lease, EnvdAccess access, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        var start = new
        {
            process = new
            {
                cmd = "/bin/bash",
                args = new[] { "-l", "-c", SandboxScript.RunCommand(spec) },
                envs = spec.Environment ?? new Dictionary<string, string>(),
                cwd = _options.WorkDir,
            },
            stdin = false,
        };

        using var message = new HttpRequestMessage(HttpMethod.Post, Envd(lease, access, "process.Process/Start"))
        {
            Version = new Version(1, 1),
            Content = new ByteArrayContent(ConnectEnvelopeReader.Frame(JsonSerializer.SerializeToUtf8Bytes(start, CloudJson.Options))),
        };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/connect+json");
        message.Headers.Add("Connect-Protocol-Version", "1");
        message.Headers.Add("Connect-Timeout-Ms", ((long)(spec.Timeout + _options.ExecutionGrace).TotalMilliseconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
        message.Headers.Add("Keepalive-Ping-Interval", ((int)_options.KeepaliveInterval.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture));
        // envd picks the user from a Basic header with an empty password.
        message.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(_options.User + ":")));
        AddEnvdHeaders(message, lease, access);

        var startedAt = _time.GetTimestamp();
        using var deadline = new CancellationTokenSource(spec.Timeout, _time);
        using var idle = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token, idle.Token);

        var stdout = new CappedOutput(spec.OutputLimitBytes);
        var stderr = new CappedOutput(spec.OutputLimitBytes);
        int? exitCode = null;
        string? endStatus = null;
        var ended = false;

        try
        {
            idle.CancelAfter(_options.StreamIdleTimeout);
            using var response = await CloudHttp.SendAsync(_http, message, Id, "run process", CloudErrorCodes.ExecutionFailed, _time, linked.Token, HttpCompletionOption.ResponseHeadersRead);
            await using var body = await response.Content.ReadAsStreamAsync(linked.Token);
            var reader = new ConnectEnvelopeReader(body);

            while (true)
            {
                // Every envelope (data or keepalive) restarts the silence clock.
                idle.CancelAfter(_options.StreamIdleTimeout);
                var envelope = await reader.ReadAsync(linked.Token);
                if (envelope is null)
                {
                    throw new ProviderException(Id, CloudErrorCodes.SandboxLost, "e2b: process stream ended without an end-of-stream message (connection cut)", transient: true);
                }

                var (flags, payload) = envelope.Value;
                if ((flags & ConnectEnvelopeReader.CompressedFlag) != 0)
                {
                    throw ProviderErrors.BadResponse(Id, "run process", "compressed envelope without negotiated compression");
                }

                if ((flags & ConnectEnvelopeReader.EndStreamFlag) != 0)
                {
                    ThrowIfStreamError(payload);
                    break;
                }

                ended |= ApplyEvent(payload, stdout, stderr, ref exitCode, ref endStatus);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            // Our run timeout: a result, not a provider failure. The process is killed with the sandbox on release.
            return Result(stdout, stderr, exitCode: null, startedAt, timedOut: true, oom: false);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested && idle.IsCancellationRequested)
        {
            throw new ProviderException(Id, CloudErrorCodes.StreamStalled,
                $"e2b: no output or keepalive for {_options.StreamIdleTimeout}; the stream is stuck", transient: true, ex);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or EndOfStreamException)
        {
            throw new ProviderException(Id, CloudErrorCodes.SandboxLost, $"e2b: process stream broke ({ex.Message})", transient: true, ex);
        }

        if (!ended)
        {
            throw new ProviderException(Id, CloudErrorCodes.SandboxLost, "e2b: stream closed before the process ended", transient: true);
        }

        // envd reports a kernel OOM kill as "signal: killed" with no exit status; we send no signals ourselves.
        var oom = endStatus?.Contains("killed", StringComparison.OrdinalIgnoreCase) == true && exitCode is null or 137 or -1;
        return Result(stdout, stderr, oom ? null : exitCode, startedAt, timedOut: false, oom);
    }

    private ExecutionResult Result(CappedOutput stdout, CappedOutput stderr, int? exitCode, long startedAt, bool timedOut, bool oom) => new()
    {
        Runtime = Runtime,
        Stdout = stdout.Text(),
        Stderr = stderr.Text(),
        StdoutTruncated = stdout.Truncated,
        StderrTruncated = stderr.Truncated,
        ExitCode = exitCode,
        WallTimeMs = (long)_time.GetElapsedTime(startedAt).TotalMilliseconds,
        TimedOut = timedOut,
        OomKilled = oom,
    };

    /// <summary>Applies one StartResponse; true when it was the process's end event.</summary>
    private static bool ApplyEvent(byte[] payload, CappedOutput stdout, CappedOutput stderr, ref int? exitCode, ref string? status)
    {
        using (var doc = ParseEnvelope(payload, "envelope"))
        {
            if (!doc.RootElement.TryGetProperty("event", out var ev) || ev.ValueKind != JsonValueKind.Object)
            {
                return false;
            }

            if (ev.TryGetProperty("data", out var data))
            {
                // Proto3 JSON renders bytes as base64.
                if (data.TryGetProperty("stdout", out var o) && o.GetString() is { } so)
                {
                    stdout.Append(Convert.FromBase64String(so));
                }

                if (data.TryGetProperty("stderr", out var e) && e.GetString() is { } se)
                {
                    stderr.Append(Convert.FromBase64String(se));
                }

                return false;
            }

            if (ev.TryGetProperty("end", out var end))
            {
                // Proto3 JSON omits zero values: a missing exitCode is 0 when the process exited.
                var exited = end.TryGetProperty("exited", out var x) && x.ValueKind == JsonValueKind.True;
                status = end.TryGetProperty("status", out var st) ? st.GetString() : null;
                exitCode = end.TryGetProperty("exitCode", out var c) && c.TryGetInt32(out var code) ? code : exited ? 0 : null;
                if (exitCode is null && status is { } s && s.StartsWith("exit status ", StringComparison.Ordinal)
                    && int.TryParse(s.AsSpan("exit status ".Length), out var parsed))
                {
                    exitCode = parsed;
                }

                return true;
            }

            // start and keepalive carry nothing we need.
            return false;
        }
    }

    private static void ThrowIfStreamError(byte[] payload)
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
            throw code switch
            {
                // The sandbox went away under the process (killed, crashed, timed out at the platform).
                "unavailable" or "not_found" or "aborted" => new ProviderException(Id, CloudErrorCodes.SandboxLost, text, transient: true),
                "resource_exhausted" => new ProviderException(Id, ProviderErrors.MentionsOutOfMemory(msg ?? "") ? CloudErrorCodes.OutOfMemory : CloudErrorCodes.RateLimited, text, transient: !ProviderErrors.MentionsOutOfMemory(msg ?? "")),
                "deadline_exceeded" => new ProviderException(Id, CloudErrorCodes.Timeout, text, transient: true),
                "unauthenticated" => new ProviderException(Id, CloudErrorCodes.Unauthorized, text),
                "permission_denied" => new ProviderException(Id, CloudErrorCodes.Forbidden, text),
                _ => new ProviderException(Id, CloudErrorCodes.ExecutionFailed, text),
            };
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
}
