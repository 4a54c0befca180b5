using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly.Registry;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.Health;
using Sandstorm.Providers.Resilience;

namespace Sandstorm.Providers.Daytona;

/// <summary>
/// Daytona: container sandboxes. Control plane <c>{api}/sandbox</c> (create answers 200, not 201), execution through the
/// toolbox at <c>{toolboxProxyUrl}/{id}/process/execute</c>, which returns stdout and stderr combined.
/// </summary>
public sealed class DaytonaProvider : ISandboxProvider
{
    public const string Id = "daytona";
    public const string HttpClientName = "sandstorm-daytona";
    public const string Runtime = "container";

    /// <summary>Label every sandbox of a run carries: release finds the run's sandboxes by it.</summary>
    public const string RunLabel = "sandstorm.run";

    public const string TenantLabel = "sandstorm.tenant";

    private static readonly string[] DefaultRegions = ["us", "eu"];

    private readonly DaytonaOptions _options;
    private readonly CloudRest _rest;
    private readonly TimeProvider _time;
    private readonly ILogger<DaytonaProvider> _logger;

    public DaytonaProvider(
        IHttpClientFactory httpClients,
        IOptions<DaytonaOptions> options,
        ResiliencePipelineProvider<string> pipelines,
        ProviderHealthMonitor health,
        TimeProvider time,
        ILogger<DaytonaProvider> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        var caller = new ProviderCaller(Id, pipelines.GetPipeline(Id), health.For(Id), time, logger);
        _rest = new CloudRest(Id, httpClients.CreateClient(HttpClientName), caller, time, (message, _) =>
        {
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.ApiKey);
            return ValueTask.CompletedTask;
        });
        Capabilities = new ProviderCapabilities
        {
            Provider = Id,
            // Containers on shared kernels: container-grade isolation, "standard".
            Runtimes = [new RuntimeOffer(Runtime, IsolationLevel.Standard)],
            Regions = _options.Regions.Count > 0 ? _options.Regions : DefaultRegions,
            Languages = [Languages.Python, Languages.JavaScript, Languages.Bash],
            MaxCpu = 4,
            MaxMemoryMiB = 8 * 1024,
            MaxTimeout = TimeSpan.FromHours(1),
            Price = new PriceSheet { VcpuSecond = 0.000014, GibSecond = 0.0000045, GranularitySeconds = 1 },
        };
    }

    public ProviderCapabilities Capabilities { get; }

    /// <summary>Daytona allocates whole vCPUs and whole GiB and bills what it allocated.</summary>
    public decimal ComputeCost(SandboxLease lease, ExecutionSpec spec, ExecutionResult result) =>
        Capabilities.Price.CostFor(BilledCpu(spec.Cpu), BilledMemoryGiB(spec.MemoryMiB) * 1024, result.WallTimeMs / 1000.0);

    public async Task<SandboxLease> ProvisionAsync(ProvisionRequest request, CancellationToken cancellationToken)
    {
        var region = _options.RegionFor(request.Region, Capabilities.Regions);
        var name = RunNames.For(request.RunId);
        var sandbox = await CreateOrFindAsync(request, region, name, cancellationToken);
        var sandboxId = sandbox.Id!;
        try
        {
            sandbox = await WaitUntilStartedAsync(sandbox, request.TenantId, cancellationToken);
            var proxy = sandbox.ToolboxProxyUrl ?? await GetToolboxProxyUrlAsync(sandboxId, request.TenantId, cancellationToken);
            _logger.LogInformation("Daytona sandbox {SandboxId} started for run {RunId}", sandboxId, request.RunId);
            return new SandboxLease(Id, sandboxId, Runtime, region)
            {
                RunId = request.RunId,
                TenantId = request.TenantId,
                Data = new Dictionary<string, string> { ["toolboxProxyUrl"] = proxy },
            };
        }
        catch
        {
            // It exists but is unusable: do not leak it.
            await TryDeleteAsync(sandboxId, request.TenantId);
            throw;
        }
    }

    public async Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        if (!Capabilities.Languages.Contains(spec.Language))
        {
            throw new ProviderException(Id, Core.Errors.ErrorCodes.NotSupported, $"daytona does not run '{spec.Language}'") { NeverStarted = true };
        }

        Uri toolbox;
        try
        {
            toolbox = await ToolboxAsync(lease, cancellationToken);
            await UploadFilesAsync(toolbox, spec, lease.TenantId, cancellationToken);
        }
        catch (ProviderException ex)
        {
            throw ExecutionFailures.BeforeStart(ex);
        }

        var request = new DaytonaExecuteRequest
        {
            Command = SandboxScript.RunCommand(spec.Language),
            Cwd = _options.WorkDir,
            Timeout = Math.Max(1, (int)Math.Ceiling(spec.Timeout.TotalSeconds)),
            Envs = spec.Environment is { Count: > 0 } env ? new Dictionary<string, string>(env) : null,
        };

        // process/execute is synchronous: once it may have arrived, a lost answer cannot be recovered (the toolbox keeps
        // no handle to the command), so the execution is final; it is repeated only when the request never left.
        var execute = new CloudCall("execute", Idempotent: false, spec.Timeout + _options.ExecutionGrace, CloudErrorCodes.ExecutionFailed,
            CloudCall.Request(HttpMethod.Post, new Uri(toolbox, "process/execute"), () => CloudRest.Json(request))) { Tenant = lease.TenantId };
        try
        {
            return await _rest.Caller.RunAsync(execute.Operation, execute.Idempotent, execute.Timeout, async ct =>
            {
                var started = _time.GetTimestamp();
                DaytonaExecuteResponse executed;
                try
                {
                    using var response = await _rest.SendOnceAsync(execute, ct);
                    executed = await CloudHttp.ReadJsonAsync<DaytonaExecuteResponse>(response, Id, "execute", ct);
                }
                catch (ProviderException ex) when (ex.Code == CloudErrorCodes.Timeout && ex.InnerException is HttpStatusFailure)
                {
                    // The daemon answers 408 when it killed the command at our timeout: the run timed out, the provider is fine.
                    return new ExecutionResult { Runtime = Runtime, TimedOut = true, WallTimeMs = Elapsed(started) };
                }

                // One combined stream: it is reported as stdout, stderr stays empty (the API does not separate them).
                var (stdout, truncated) = CappedOutput.Cap(executed.Result, spec.OutputLimitBytes);
                var exitCode = executed.ExitCode ?? executed.Code;
                return new ExecutionResult
                {
                    Runtime = Runtime,
                    Stdout = stdout,
                    StdoutTruncated = truncated,
                    ExitCode = exitCode,
                    // 137 = SIGKILL; inside a container with a memory limit that is the OOM killer.
                    OomKilled = exitCode == 137,
                    WallTimeMs = Elapsed(started),
                };
            }, cancellationToken, sampleLatency: false, tenant: lease.TenantId);
        }
        catch (ProviderException ex)
        {
            throw ExecutionFailures.AfterStart(Id, ex);
        }
    }

    public async Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        await DeleteAsync(lease.SandboxId, lease.TenantId, cancellationToken);
        if (lease.RunId is { } runId)
        {
            await DeleteRunAsync(runId, lease.TenantId, except: lease.SandboxId, cancellationToken);
        }
    }

    public Task ReleaseRunAsync(string runId, string tenantId, CancellationToken cancellationToken) =>
        DeleteRunAsync(runId, tenantId, except: null, cancellationToken);

    /// <summary>
    /// Creates the run's sandbox under its deterministic name. When the create may have landed although it failed, or the
    /// name is taken (an earlier attempt of this run), the sandbox is looked up by that name and reused if it can start.
    /// </summary>
    private async Task<DaytonaSandbox> CreateOrFindAsync(ProvisionRequest request, string region, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await CreateAsync(request, region, name, cancellationToken);
        }
        catch (ProviderException ex) when (NameTaken(ex) || !ex.NeverStarted)
        {
            DaytonaSandbox? existing;
            try
            {
                existing = await GetAsync(name, request.TenantId, cancellationToken);
            }
            catch (ProviderException lookup)
            {
                _logger.LogWarning(lookup, "Daytona: could not look up sandbox {Name} of run {RunId} after a failed create", name, request.RunId);
                throw ex;
            }

            if (existing is not null && Usable(existing))
            {
                _logger.LogWarning("Daytona create for run {RunId} failed ({Code}) but its sandbox {SandboxId} exists: reusing it", request.RunId, ex.Code, existing.Id);
                return existing;
            }

            if (!NameTaken(ex))
            {
                throw;
            }

            // The name is held by a sandbox of this run that can no longer start (or that is going away): delete it and
            // create one without a name; release finds it by the run's label.
            if (existing is not null)
            {
                await DeleteAsync(existing.Id!, request.TenantId, cancellationToken);
            }

            return await CreateAsync(request, region, name: null, cancellationToken);
        }
    }

    private async Task<DaytonaSandbox> CreateAsync(ProvisionRequest request, string region, string? name, CancellationToken cancellationToken)
    {
        var body = new DaytonaCreateSandbox
        {
            Name = name,
            Snapshot = _options.Snapshot,
            Labels = new() { [RunLabel] = request.RunId, [TenantLabel] = request.TenantId, ["code-toolbox-language"] = ToolboxLanguage(request.Language) },
            Target = _options.Target ?? region,
            Cpu = BilledCpu(request.Cpu),
            Memory = BilledMemoryGiB(request.MemoryMiB),
            AutoStopInterval = Math.Max(1, (int)Math.Ceiling((request.Timeout + _options.ProvisionTimeout).TotalMinutes)),
            AutoDeleteInterval = 0,
            NetworkBlockAll = true,
        };

        // Not idempotent: repeated only when the attempt never left. Daytona answers 200 (not 201) with the sandbox,
        // possibly still starting.
        var sandbox = await _rest.JsonAsync<DaytonaSandbox>(
            new CloudCall("create sandbox", Idempotent: false, _options.ProvisionTimeout, CloudErrorCodes.ProvisionFailed,
                CloudCall.Request(HttpMethod.Post, _options.Endpoint("sandbox"), () => CloudRest.Json(body))) { Tenant = request.TenantId },
            cancellationToken);

        return string.IsNullOrEmpty(sandbox.Id) ? throw ProviderErrors.BadResponse(Id, "create sandbox", "no id") : sandbox;
    }

    /// <summary>A sandbox by id or name; null when there is none.</summary>
    private async Task<DaytonaSandbox?> GetAsync(string idOrName, string? tenant, CancellationToken cancellationToken)
    {
        try
        {
            var sandbox = await _rest.JsonAsync<DaytonaSandbox>(
                new CloudCall("get sandbox", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ProvisionFailed,
                    CloudCall.Request(HttpMethod.Get, _options.Endpoint($"sandbox/{Uri.EscapeDataString(idOrName)}"))) { Tenant = tenant },
                cancellationToken);
            return string.IsNullOrEmpty(sandbox.Id) ? null : sandbox;
        }
        catch (ProviderException ex) when (ex.Code == CloudErrorCodes.NotFound)
        {
            return null;
        }
    }

    /// <summary>Deletes every sandbox of the run but <paramref name="except"/>: the one holding its name, and any carrying its label.</summary>
    private async Task DeleteRunAsync(string runId, string? tenant, string? except, CancellationToken cancellationToken)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        // By name: read-your-writes. By label: the list is eventually consistent, so it also catches unnamed creates later.
        if (await GetAsync(RunNames.For(runId), tenant, cancellationToken) is { } named && !Gone(named))
        {
            ids.Add(named.Id!);
        }

        foreach (var labelled in await ListRunAsync(runId, tenant, cancellationToken))
        {
            if (!Gone(labelled))
            {
                ids.Add(labelled.Id!);
            }
        }

        ids.Remove(except ?? "");
        foreach (var id in ids)
        {
            _logger.LogWarning("Daytona sandbox {SandboxId} of run {RunId} was not the lease's: deleting it too", id, runId);
            await DeleteAsync(id, tenant, cancellationToken);
        }
    }

    /// <summary>The run's sandboxes by label (<c>GET /sandbox?labels={json}</c>); answered as a page or, by older APIs, an array.</summary>
    private async Task<IReadOnlyList<DaytonaSandbox>> ListRunAsync(string runId, string? tenant, CancellationToken cancellationToken)
    {
        var labels = Uri.EscapeDataString(JsonSerializer.Serialize(new Dictionary<string, string> { [RunLabel] = runId }));
        var page = await _rest.JsonAsync<JsonElement>(
            new CloudCall("list run sandboxes", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ProvisionFailed,
                CloudCall.Request(HttpMethod.Get, _options.Endpoint($"sandbox?labels={labels}&limit=100"))) { Tenant = tenant },
            cancellationToken);
        var items = page.ValueKind == JsonValueKind.Array ? page
            : page.ValueKind == JsonValueKind.Object && page.TryGetProperty("items", out var i) && i.ValueKind == JsonValueKind.Array ? i
            : throw ProviderErrors.BadResponse(Id, "list run sandboxes", "neither a list nor a page of sandboxes");
        return items.Deserialize<List<DaytonaSandbox>>(CloudJson.Options)!
            // Only what provably carries the run's label: a server that ignored the filter must not make us delete others.
            .Where(s => !string.IsNullOrEmpty(s.Id) && s.Labels?.GetValueOrDefault(RunLabel) == runId)
            .ToList();
    }

    private Task DeleteAsync(string sandboxId, string? tenant, CancellationToken cancellationToken) =>
        _rest.DeleteAsync(
            new CloudCall("delete sandbox", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed,
                CloudCall.Request(HttpMethod.Delete, _options.Endpoint($"sandbox/{Uri.EscapeDataString(sandboxId)}"))) { Tenant = tenant },
            cancellationToken);

    /// <summary>True for a 409 on create: the run's name is taken.</summary>
    private static bool NameTaken(ProviderException ex) => ex.InnerException is HttpStatusFailure { Status: System.Net.HttpStatusCode.Conflict };

    /// <summary>A sandbox that is running or on its way to running (WaitUntilStarted takes it from there).</summary>
    private static bool Usable(DaytonaSandbox sandbox) =>
        sandbox.State?.ToLowerInvariant() is null or "started" or "starting" or "creating" or "restoring" or "pulling_snapshot" or "pending_build" or "building_snapshot";

    private static bool Gone(DaytonaSandbox sandbox) => sandbox.State?.ToLowerInvariant() is "destroyed" or "destroying";

    private async Task<DaytonaSandbox> WaitUntilStartedAsync(DaytonaSandbox sandbox, string tenant, CancellationToken cancellationToken)
    {
        // Polling a state with a deadline (not a retry policy): each GET is itself resilient.
        var deadline = _time.GetTimestamp();
        while (!string.Equals(sandbox.State, "started", StringComparison.OrdinalIgnoreCase))
        {
            if (sandbox.State is "error" or "build_failed" or "destroyed")
            {
                throw new ProviderException(Id, CloudErrorCodes.ProvisionFailed, $"daytona sandbox {sandbox.Id} is {sandbox.State}: {sandbox.ErrorReason}",
                    transient: ProviderErrors.MentionsOutOfMemory(sandbox.ErrorReason ?? "") is false && sandbox.State == "error");
            }

            if (_time.GetElapsedTime(deadline) > _options.StartTimeout)
            {
                throw new ProviderException(Id, CloudErrorCodes.Timeout, $"daytona sandbox {sandbox.Id} not started after {_options.StartTimeout} (state {sandbox.State})", transient: true);
            }

            await Task.Delay(_options.StartPollInterval, _time, cancellationToken);
            sandbox = await _rest.JsonAsync<DaytonaSandbox>(
                new CloudCall("get sandbox", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ProvisionFailed,
                    CloudCall.Request(HttpMethod.Get, _options.Endpoint($"sandbox/{Uri.EscapeDataString(sandbox.Id!)}"))) { Tenant = tenant },
                cancellationToken);
        }

        return sandbox;
    }

    private async Task<string> GetToolboxProxyUrlAsync(string sandboxId, string? tenant, CancellationToken cancellationToken)
    {
        var proxy = await _rest.JsonAsync<DaytonaProxyUrl>(
            new CloudCall("get toolbox url", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ProvisionFailed,
                CloudCall.Request(HttpMethod.Get, _options.Endpoint($"sandbox/{Uri.EscapeDataString(sandboxId)}/toolbox-proxy-url"))) { Tenant = tenant },
            cancellationToken);
        return proxy.Url ?? throw ProviderErrors.BadResponse(Id, "get toolbox url", "no url");
    }

    private async Task<Uri> ToolboxAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        var proxy = lease.Data?.GetValueOrDefault("toolboxProxyUrl") is { Length: > 0 } p ? p : await GetToolboxProxyUrlAsync(lease.SandboxId, lease.TenantId, cancellationToken);
        // The SDK's toolbox base is {toolboxProxyUrl}/{sandboxId}.
        return new Uri(proxy.TrimEnd('/') + "/" + Uri.EscapeDataString(lease.SandboxId) + "/");
    }

    private async Task UploadFilesAsync(Uri toolbox, ExecutionSpec spec, string? tenant, CancellationToken cancellationToken)
    {
        var files = SandboxScript.Files(spec);

        // Overwriting the same files is idempotent: retried on transient failures.
        await _rest.SendAsync(
            new CloudCall("upload files", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed,
                CloudCall.Request(HttpMethod.Post, new Uri(toolbox, "files/bulk-upload"), () =>
                {
                    var form = new MultipartFormDataContent();
                    for (var i = 0; i < files.Count; i++)
                    {
                        var path = $"{_options.WorkDir.TrimEnd('/')}/{files[i].Key}";
                        form.Add(new StringContent(path), $"files[{i}].path");
                        form.Add(SandboxScript.FilePart(files[i].Value), $"files[{i}].file", path);
                    }

                    return form;
                })) { Tenant = tenant },
            cancellationToken);
    }

    private async Task TryDeleteAsync(string sandboxId, string tenant)
    {
        try
        {
            await DeleteAsync(sandboxId, tenant, CancellationToken.None);
        }
        catch (ProviderException ex)
        {
            _logger.LogWarning(ex, "Daytona sandbox {SandboxId} could not be deleted after a failed start", sandboxId);
        }
    }

    private long Elapsed(long started) => (long)_time.GetElapsedTime(started).TotalMilliseconds;

    private static int BilledCpu(double cpu) => Math.Max(1, (int)Math.Ceiling(cpu));

    private static int BilledMemoryGiB(int memoryMiB) => Math.Max(1, (int)Math.Ceiling(memoryMiB / 1024.0));

    private static string ToolboxLanguage(string language) => language switch
    {
        Languages.JavaScript => "javascript",
        _ => "python",
    };
}
