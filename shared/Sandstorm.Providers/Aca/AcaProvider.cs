using System.Net.Http.Headers;
using System.Text.Json;
using Azure.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly.Registry;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.Health;
using Sandstorm.Providers.Resilience;

namespace Sandstorm.Providers.Aca;

/// <summary>
/// Azure Container Apps dynamic sessions (code interpreter pool): Hyper-V isolated Python sessions reached through the pool's
/// data-plane REST API with a managed-identity token. A session exists as soon as an identifier is used, so provisioning
/// only picks the identifier (one per run); the platform deletes the session after the pool's cooldown.
/// </summary>
public sealed class AcaProvider : ISandboxProvider
{
    public const string Id = "aca";
    public const string HttpClientName = "sandstorm-aca";
    public const string Runtime = "hyperv";

    private readonly AcaOptions _options;
    private readonly TokenCredential _credential;
    private readonly CloudRest _rest;
    private readonly TimeProvider _time;
    private readonly ILogger<AcaProvider> _logger;
    private readonly SemaphoreSlim _tokenGate = new(1, 1);
    private AccessToken? _token;

    public AcaProvider(
        IHttpClientFactory httpClients,
        IOptions<AcaOptions> options,
        [FromKeyedServices(CloudProviderRegistration.AcaCredentialKey)] TokenCredential credential,
        ResiliencePipelineProvider<string> pipelines,
        ProviderHealthMonitor health,
        TimeProvider time,
        ILogger<AcaProvider> logger)
    {
        _options = options.Value;
        _credential = credential;
        _time = time;
        _logger = logger;
        var caller = new ProviderCaller(Id, pipelines.GetPipeline(Id), health.For(Id), time, logger);
        _rest = new CloudRest(Id, httpClients.CreateClient(HttpClientName), caller, time, async (message, ct) =>
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await GetTokenAsync(ct)));
        var sessionSecond = _options.SessionHourPrice / 3600;
        Capabilities = new ProviderCapabilities
        {
            Provider = Id,
            // Each session is its own Hyper-V sandbox: hardware virtualisation, "maximum".
            Runtimes = [new RuntimeOffer(Runtime, IsolationLevel.Maximum)],
            Regions = _options.Regions.Count > 0 ? _options.Regions : [RegionOf(_options.PoolManagementEndpoint)],
            // The code interpreter pool runs Python only.
            Languages = [Languages.Python],
            // Sessions have a fixed size; one run is one session.
            MaxCpu = 1,
            MaxMemoryMiB = 2 * 1024,
            // Synchronous execution is capped by the service at 220 s.
            MaxTimeout = TimeSpan.FromSeconds(220),
            // Per session-second, expressed per vCPU-second of the fixed size (1), so the router's estimate is the session price;
            // a session is billed at least for the cooldown it stays allocated.
            Price = new PriceSheet { VcpuSecond = sessionSecond, GibSecond = 0, MinimumSeconds = _options.SessionCooldown.TotalSeconds, GranularitySeconds = 1 },
        };
    }

    public ProviderCapabilities Capabilities { get; }

    /// <summary>Billed per session, whatever the requested cpu and memory: the run's time plus the cooldown the session lingers for.</summary>
    public decimal ComputeCost(SandboxLease lease, ExecutionSpec spec, ExecutionResult result)
    {
        var seconds = Math.Ceiling(result.WallTimeMs / 1000.0 + _options.SessionCooldown.TotalSeconds);
        return Math.Round((decimal)(seconds * _options.SessionHourPrice / 3600), 8, MidpointRounding.AwayFromZero);
    }

    public Task<SandboxLease> ProvisionAsync(ProvisionRequest request, CancellationToken cancellationToken)
    {
        if (request.Language != Languages.Python)
        {
            throw new ProviderException(Id, Core.Errors.ErrorCodes.NotSupported, $"aca code interpreter sessions run python only, not '{request.Language}'");
        }

        // The identifier is the session: one per run, so runs never share interpreter state. It is derived from the run id
        // alone, so a retried provision names the same session: nothing is created here and nothing can leak.
        var identifier = "sandstorm-" + request.RunId;
        _logger.LogInformation("ACA session {Identifier} chosen for run {RunId}", identifier, request.RunId);
        return Task.FromResult(new SandboxLease(Id, identifier, Runtime, _options.RegionFor(request.Region, Capabilities.Regions))
        {
            RunId = request.RunId,
            TenantId = request.TenantId,
        });
    }

    public async Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        if (spec.Language != Languages.Python)
        {
            throw new ProviderException(Id, Core.Errors.ErrorCodes.NotSupported, $"aca code interpreter sessions run python only, not '{spec.Language}'") { NeverStarted = true };
        }

        try
        {
            foreach (var (path, content) in spec.Files ?? new Dictionary<string, string>())
            {
                await UploadAsync(lease, SandboxScript.SafeRelativePath(path), content, cancellationToken);
            }
        }
        catch (ProviderException ex)
        {
            throw ExecutionFailures.BeforeStart(ex);
        }

        // Synchronous execution: the 2024-02-02-preview API gives a running execution no handle, so an answer lost after the
        // request may have arrived cannot be recovered, and the execution is final; it is repeated only when it never left.
        var body = new AcaExecuteRequest(new AcaExecuteProperties { Code = WithEnvironment(spec) });
        var execute = new CloudCall("execute", Idempotent: false, spec.Timeout + _options.ExecutionGrace, CloudErrorCodes.ExecutionFailed,
            CloudCall.Request(HttpMethod.Post, Session("code/execute", lease.SandboxId), () => CloudRest.Json(body))) { Tenant = lease.TenantId };
        try
        {
            return await _rest.Caller.RunAsync(execute.Operation, execute.Idempotent, execute.Timeout, async ct =>
            {
                var started = _time.GetTimestamp();
                using var deadline = new CancellationTokenSource(spec.Timeout, _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
                try
                {
                    using var response = await _rest.SendOnceAsync(execute, linked.Token);
                    var executed = await CloudHttp.ReadJsonAsync<AcaExecuteResponse>(response, Id, "execute", linked.Token);
                    var properties = executed.Properties ?? throw ProviderErrors.BadResponse(Id, "execute", "no properties");
                    return Result(properties, spec, _time.GetElapsedTime(started));
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
                {
                    return new ExecutionResult { Runtime = Runtime, TimedOut = true, WallTimeMs = (long)_time.GetElapsedTime(started).TotalMilliseconds };
                }
            }, cancellationToken, sampleLatency: false, tenant: lease.TenantId);
        }
        catch (ProviderException ex)
        {
            throw ExecutionFailures.AfterStart(Id, ex);
        }
    }

    /// <summary>
    /// Nothing to delete: the 2024-02-02-preview API has no session delete, and the platform removes a session after the
    /// pool's cooldown. Idempotent by construction.
    /// </summary>
    public Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Downloads a file the code wrote to /mnt/data (the session's file area).</summary>
    public Task<byte[]> DownloadAsync(SandboxLease lease, string fileName, CancellationToken cancellationToken) =>
        _rest.BytesAsync(
            new CloudCall("download file", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed,
                CloudCall.Request(HttpMethod.Get, Session($"files/content/{Uri.EscapeDataString(fileName)}", lease.SandboxId))) { Tenant = lease.TenantId },
            cancellationToken);

    // Uploading the same file again overwrites it: idempotent, retried.
    private Task UploadAsync(SandboxLease lease, string path, string content, CancellationToken cancellationToken) =>
        _rest.SendAsync(
            new CloudCall("upload file", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed,
                CloudCall.Request(HttpMethod.Post, Session("files/upload", lease.SandboxId), () =>
                    new MultipartFormDataContent { { SandboxScript.FilePart(content), "file", path } })) { Tenant = lease.TenantId },
            cancellationToken);

    private ExecutionResult Result(AcaExecuteResult properties, ExecutionSpec spec, TimeSpan elapsed)
    {
        var (stdout, outTruncated) = CappedOutput.Cap(properties.Stdout, spec.OutputLimitBytes);
        var (stderr, errTruncated) = CappedOutput.Cap(properties.Stderr, spec.OutputLimitBytes);
        var status = properties.Status ?? "";
        var timedOut = status.Equals("Timeout", StringComparison.OrdinalIgnoreCase);
        var success = status.Equals("Success", StringComparison.OrdinalIgnoreCase) || status.Equals("Succeeded", StringComparison.OrdinalIgnoreCase);
        return new ExecutionResult
        {
            Runtime = Runtime,
            Stdout = stdout,
            Stderr = stderr,
            StdoutTruncated = outTruncated,
            StderrTruncated = errTruncated,
            // The interpreter reports success or failure, not a process exit code: 0 or 1 stand for them.
            ExitCode = timedOut ? null : success ? 0 : 1,
            TimedOut = timedOut,
            OomKilled = ProviderErrors.MentionsOutOfMemory(properties.Stderr ?? "") || (properties.Stderr ?? "").Contains("MemoryError", StringComparison.Ordinal),
            WallTimeMs = properties.ExecutionTimeInMilliseconds ?? (long)elapsed.TotalMilliseconds,
        };
    }

    /// <summary>The API takes no environment: set it from inside the interpreter before the code runs.</summary>
    private static string WithEnvironment(ExecutionSpec spec)
    {
        if (spec.Environment is not { Count: > 0 } env)
        {
            return spec.Code;
        }

        var json = JsonSerializer.Serialize(env);
        return $"import os as __sandstorm_os, json as __sandstorm_json\n__sandstorm_os.environ.update(__sandstorm_json.loads({JsonSerializer.Serialize(json)}))\n{spec.Code}";
    }

    /// <summary>A data-plane address of one session: the pool endpoint, the path, the api-version and the session identifier.</summary>
    private Uri Session(string path, string identifier)
    {
        var root = _options.PoolManagementEndpoint!.ToString().TrimEnd('/');
        return new Uri($"{root}/{path}?api-version={Uri.EscapeDataString(_options.ApiVersion)}&identifier={Uri.EscapeDataString(identifier)}");
    }

    private async Task<string> GetTokenAsync(CancellationToken cancellationToken)
    {
        // Reuse the token until five minutes before it expires.
        if (_token is { } cached && cached.ExpiresOn - _time.GetUtcNow() > TimeSpan.FromMinutes(5))
        {
            return cached.Token;
        }

        await _tokenGate.WaitAsync(cancellationToken);
        try
        {
            if (_token is { } again && again.ExpiresOn - _time.GetUtcNow() > TimeSpan.FromMinutes(5))
            {
                return again.Token;
            }

            try
            {
                var token = await _credential.GetTokenAsync(new TokenRequestContext([AcaOptions.Audience]), cancellationToken);
                _token = token;
                return token.Token;
            }
            catch (Azure.Identity.AuthenticationFailedException ex)
            {
                throw new ProviderException(Id, CloudErrorCodes.Unauthorized, $"aca: no token for {AcaOptions.Audience}: {ex.Message}", transient: false, ex);
            }
        }
        finally
        {
            _tokenGate.Release();
        }
    }

    private static string RegionOf(Uri? endpoint)
    {
        // https://{region}.dynamicsessions.io/... names its region in the host.
        var host = endpoint?.Host ?? "";
        var dot = host.IndexOf('.', StringComparison.Ordinal);
        return host.EndsWith(".dynamicsessions.io", StringComparison.OrdinalIgnoreCase) && dot > 0 ? host[..dot] : "local";
    }
}
