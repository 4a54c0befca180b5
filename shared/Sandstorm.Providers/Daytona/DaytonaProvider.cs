using System.Net.Http.Headers;
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
            // Sandboxes reach the internet: requirements are installed with pip.
            Network = true,
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
        var body = new DaytonaCreateSandbox
        {
            Snapshot = _options.Snapshot,
            Labels = new() { ["sandstorm.run"] = request.RunId, ["sandstorm.tenant"] = request.TenantId, ["code-toolbox-language"] = ToolboxLanguage(request.Language) },
            Target = _options.Target ?? region,
            Cpu = BilledCpu(request.Cpu),
            Memory = BilledMemoryGiB(request.MemoryMiB),
            AutoStopInterval = Math.Max(1, (int)Math.Ceiling((request.Timeout + _options.ProvisionTimeout).TotalMinutes)),
            AutoDeleteInterval = 0,
            NetworkBlockAll = true,
        };

        // Not idempotent: never retried. Daytona answers 200 (not 201) with the sandbox, possibly still starting.
        var sandbox = await _rest.JsonAsync<DaytonaSandbox>(
            new CloudCall("create sandbox", Idempotent: false, _options.ProvisionTimeout, CloudErrorCodes.ProvisionFailed,
                CloudCall.Request(HttpMethod.Post, _options.Endpoint("sandbox"), () => CloudRest.Json(body))),
            cancellationToken);

        if (string.IsNullOrEmpty(sandbox.Id))
        {
            throw ProviderErrors.BadResponse(Id, "create sandbox", "no id");
        }

        var sandboxId = sandbox.Id;
        try
        {
            sandbox = await WaitUntilStartedAsync(sandbox, cancellationToken);
            var proxy = sandbox.ToolboxProxyUrl ?? await GetToolboxProxyUrlAsync(sandboxId, cancellationToken);
            _logger.LogInformation("Daytona sandbox {SandboxId} started for run {RunId}", sandboxId, request.RunId);
            return new SandboxLease(Id, sandboxId, Runtime, region)
            {
                Data = new Dictionary<string, string> { ["toolboxProxyUrl"] = proxy },
            };
        }
        catch
        {
            // It exists but is unusable: do not leak it.
            await TryDeleteAsync(sandboxId);
            throw;
        }
    }

    public async Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        if (!Capabilities.Languages.Contains(spec.Language))
        {
            throw new ProviderException(Id, Core.Errors.ErrorCodes.NotSupported, $"daytona does not run '{spec.Language}'");
        }

        var toolbox = await ToolboxAsync(lease, cancellationToken);
        await UploadFilesAsync(toolbox, spec, cancellationToken);

        var request = new DaytonaExecuteRequest
        {
            Command = SandboxScript.RunCommand(spec),
            Cwd = _options.WorkDir,
            Timeout = Math.Max(1, (int)Math.Ceiling(spec.Timeout.TotalSeconds)),
            Envs = spec.Environment is { Count: > 0 } env ? new Dictionary<string, string>(env) : null,
        };

        var execute = new CloudCall("execute", Idempotent: false, spec.Timeout + _options.ExecutionGrace, CloudErrorCodes.ExecutionFailed,
            CloudCall.Request(HttpMethod.Post, new Uri(toolbox, "process/execute"), () => CloudRest.Json(request)));
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
        }, cancellationToken, sampleLatency: false);
    }

    public async Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        await _rest.DeleteAsync(
            new CloudCall("delete sandbox", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ExecutionFailed,
                CloudCall.Request(HttpMethod.Delete, _options.Endpoint($"sandbox/{Uri.EscapeDataString(lease.SandboxId)}"))),
            cancellationToken);
    }

    private async Task<DaytonaSandbox> WaitUntilStartedAsync(DaytonaSandbox sandbox, CancellationToken cancellationToken)
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
                    CloudCall.Request(HttpMethod.Get, _options.Endpoint($"sandbox/{Uri.EscapeDataString(sandbox.Id!)}"))),
                cancellationToken);
        }

        return sandbox;
    }

    private async Task<string> GetToolboxProxyUrlAsync(string sandboxId, CancellationToken cancellationToken)
    {
        var proxy = await _rest.JsonAsync<DaytonaProxyUrl>(
            new CloudCall("get toolbox url", Idempotent: true, _options.RequestTimeout, CloudErrorCodes.ProvisionFailed,
                CloudCall.Request(HttpMethod.Get, _options.Endpoint($"sandbox/{Uri.EscapeDataString(sandboxId)}/toolbox-proxy-url"))),
            cancellationToken);
        return proxy.Url ?? throw ProviderErrors.BadResponse(Id, "get toolbox url", "no url");
    }

    private async Task<Uri> ToolboxAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        var proxy = lease.Data?.GetValueOrDefault("toolboxProxyUrl") is { Length: > 0 } p ? p : await GetToolboxProxyUrlAsync(lease.SandboxId, cancellationToken);
        // The SDK's toolbox base is {toolboxProxyUrl}/{sandboxId}.
        return new Uri(proxy.TrimEnd('/') + "/" + Uri.EscapeDataString(lease.SandboxId) + "/");
    }

    private async Task UploadFilesAsync(Uri toolbox, ExecutionSpec spec, CancellationToken cancellationToken)
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
                })),
            cancellationToken);
    }

    private async Task TryDeleteAsync(string sandboxId)
    {
        try
        {
            await ReleaseAsync(new SandboxLease(Id, sandboxId, Runtime, ""), CancellationToken.None);
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
