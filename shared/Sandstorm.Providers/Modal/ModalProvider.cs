using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly.Registry;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.Health;
using Sandstorm.Providers.Modal.Protocol;
using Sandstorm.Providers.Resilience;
using SandboxCreateRequest = Sandstorm.Providers.Modal.Protocol.SandboxCreateRequest;

namespace Sandstorm.Providers.Modal;

/// <summary>
/// Modal: gVisor sandboxes over Modal's gRPC API (there is no REST API). Execution uses <c>ContainerExec</c> +
/// <c>ContainerExecGetOutput</c> rather than the task command router: the router needs a per-task JWT and a second
/// endpoint, while the exec RPCs go through the same authenticated channel and resume by batch index after a cut.
/// </summary>
public sealed class ModalProvider : ISandboxProvider, IDisposable
{
    public const string Id = "modal";
    public const string Runtime = "gvisor";

    /// <summary>Modal bills at least 0.125 physical core per container.</summary>
    public const double MinimumCores = 0.125;

    /// <summary>Most times a cut or stuck output read is resumed before the execution is given up as interrupted.</summary>
    private const int MaxOutputResumes = 3;

    private static readonly string[] DefaultRegions = ["us-east", "us-west", "eu-west"];

    private readonly ModalOptions _options;
    private readonly GrpcChannel _channel;
    private readonly ModalClient.ModalClientClient _client;
    private readonly ProviderCaller _caller;
    private readonly TimeProvider _time;
    private readonly ILogger<ModalProvider> _logger;
    private readonly SemaphoreSlim _setup = new(1, 1);
    private (string AppId, string ImageId)? _appAndImage;

    public ModalProvider(
        IOptions<ModalOptions> options,
        ResiliencePipelineProvider<string> pipelines,
        ProviderHealthMonitor health,
        TimeProvider time,
        ILogger<ModalProvider> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        _channel = GrpcChannel.ForAddress(_options.BaseUrl!, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2) },
            DisposeHttpClient = true,
            // A call cancelled by its token (the pipeline's per-attempt timeout, the run's deadline) throws
            // OperationCanceledException, which the timeout strategy turns into a timeout, not RpcException(Cancelled).
            ThrowOperationCanceledOnCancellation = true,
        });
        _client = new ModalClient.ModalClientClient(_channel);
        _caller = new ProviderCaller(Id, pipelines.GetPipeline(Id), health.For(Id), time, logger);
        Capabilities = new ProviderCapabilities
        {
            Provider = Id,
            // gVisor: a user-space kernel between the code and the host, "strong".
            Runtimes = [new RuntimeOffer(Runtime, IsolationLevel.Strong)],
            Regions = _options.Regions.Count > 0 ? _options.Regions : DefaultRegions,
            // The default image is python:slim: python and bash, no node.
            Languages = [Languages.Python, Languages.Bash],
            MaxCpu = 64,
            MaxMemoryMiB = 64 * 1024,
            MaxTimeout = TimeSpan.FromHours(24),
            // $0.00003942 per physical core-second = 2 vCPU, so per vCPU-second half of it.
            Price = new PriceSheet { VcpuSecond = 0.00001971, GibSecond = 0.00000672, GranularitySeconds = 1 },
        };
    }

    public ProviderCapabilities Capabilities { get; }

    /// <summary>Modal bills physical cores (2 vCPU each) with a floor of 0.125 core, plus memory, per second.</summary>
    public decimal ComputeCost(SandboxLease lease, ExecutionSpec spec, ExecutionResult result)
    {
        var cores = Math.Max(spec.Cpu / 2, MinimumCores);
        return Capabilities.Price.CostFor(cores * 2, spec.MemoryMiB, result.WallTimeMs / 1000.0);
    }

    public async Task<SandboxLease> ProvisionAsync(ProvisionRequest request, CancellationToken cancellationToken)
    {
        var (appId, imageId) = await EnsureAppAndImageAsync(request.TenantId, cancellationToken);
        var name = RunNames.For(request.RunId);
        var definition = new Protocol.Sandbox
        {
            ImageId = imageId,
            // The sandbox idles; code runs through exec. Its own timeout is the safety net should release be missed.
            EntrypointArgs = { "sleep", "infinity" },
            Resources = new Resources
            {
                MilliCpu = (uint)Math.Ceiling(Math.Max(request.Cpu / 2, MinimumCores) * 1000),
                MemoryMb = (uint)request.MemoryMiB,
            },
            TimeoutSecs = (uint)Math.Ceiling((request.Timeout + _options.ExecutionGrace + _options.ProvisionTimeout).TotalSeconds),
            Workdir = _options.WorkDir,
            BlockNetwork = true,
            // Unique among the app's running sandboxes: a second create for this run collides instead of leaking.
            Name = name,
        };

        var sandboxId = await CreateOrFindAsync(appId, definition, request, cancellationToken);
        try
        {
            var taskId = await WaitForTaskAsync(sandboxId, request.TenantId, cancellationToken);
            _logger.LogInformation("Modal sandbox {SandboxId} (task {TaskId}) created for run {RunId}", sandboxId, taskId, request.RunId);
            return new SandboxLease(Id, sandboxId, Runtime, _options.RegionFor(request.Region, Capabilities.Regions))
            {
                RunId = request.RunId,
                TenantId = request.TenantId,
                Data = new Dictionary<string, string> { ["taskId"] = taskId },
            };
        }
        catch
        {
            await TryTerminateAsync(sandboxId, request.TenantId);
            throw;
        }
    }

    public async Task<ExecutionResult> ExecuteAsync(SandboxLease lease, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        if (!Capabilities.Languages.Contains(spec.Language))
        {
            throw new ProviderException(Id, Core.Errors.ErrorCodes.NotSupported, $"modal does not run '{spec.Language}' with the configured image") { NeverStarted = true };
        }

        string taskId;
        try
        {
            taskId = lease.Data?.GetValueOrDefault("taskId") is { Length: > 0 } t ? t : await WaitForTaskAsync(lease.SandboxId, lease.TenantId, cancellationToken);
        }
        catch (ProviderException ex)
        {
            throw ExecutionFailures.BeforeStart(ex);
        }

        try
        {
            // Starting a command is not idempotent: repeated only when the attempt never left. If its answer is lost the exec
            // id is unknown and the command cannot be found again, so the execution is final.
            var exec = await _caller.RunAsync("exec", idempotent: false, _options.RequestTimeout, ct =>
                Call(async () => await _client.ContainerExecAsync(new ContainerExecRequest
                {
                    TaskId = taskId,
                    Command = { "bash", "-c", SandboxScript.WriteAndRun(spec) },
                    // A backstop should our own deadline and release both be missed: Modal kills the command itself.
                    TimeoutSecs = (uint)Math.Ceiling((spec.Timeout + _options.ExecutionGrace).TotalSeconds),
                }, Options(ct)),
                    "exec", CloudErrorCodes.ExecutionFailed), cancellationToken, tenant: lease.TenantId);

            // Once started, output is read by batch index: a cut or stuck read is resumed where it stopped (nothing is lost).
            return await _caller.RunAsync("read output", idempotent: false, spec.Timeout + _options.ExecutionGrace,
                ct => CollectAsync(exec.ExecId, spec, ct), cancellationToken, sampleLatency: false, tenant: lease.TenantId);
        }
        catch (ProviderException ex)
        {
            throw ExecutionFailures.AfterStart(Id, ex);
        }
    }

    public async Task ReleaseAsync(SandboxLease lease, CancellationToken cancellationToken)
    {
        await TerminateAsync(lease.SandboxId, lease.TenantId, cancellationToken);
        if (lease.RunId is { } runId)
        {
            await TerminateRunAsync(runId, lease.TenantId, except: lease.SandboxId, cancellationToken);
        }
    }

    public Task ReleaseRunAsync(string runId, string tenantId, CancellationToken cancellationToken) =>
        TerminateRunAsync(runId, tenantId, except: null, cancellationToken);

    /// <summary>
    /// Creates the run's named sandbox. When the create may have landed although it failed, or the name is taken (an earlier
    /// attempt of this run), the running sandbox of that name is reused.
    /// </summary>
    private async Task<string> CreateOrFindAsync(string appId, Protocol.Sandbox definition, ProvisionRequest request, CancellationToken cancellationToken)
    {
        try
        {
            return await CreateAsync(appId, definition, request.TenantId, cancellationToken);
        }
        catch (ProviderException ex) when (NameTaken(ex) || !ex.NeverStarted)
        {
            string? existing;
            try
            {
                existing = await GetFromNameAsync(definition.Name, request.TenantId, cancellationToken);
            }
            catch (ProviderException lookup)
            {
                _logger.LogWarning(lookup, "Modal: could not look up sandbox {Name} of run {RunId} after a failed create", definition.Name, request.RunId);
                throw ex;
            }

            if (existing is not null)
            {
                _logger.LogWarning("Modal create for run {RunId} failed ({Code}) but its sandbox {SandboxId} is running: reusing it", request.RunId, ex.Code, existing);
                return existing;
            }

            if (!NameTaken(ex))
            {
                throw;
            }

            // The sandbox that held the name ended in between: the name is free again.
            return await CreateAsync(appId, definition, request.TenantId, cancellationToken);
        }
    }

    private async Task<string> CreateAsync(string appId, Protocol.Sandbox definition, string tenant, CancellationToken cancellationToken)
    {
        // SandboxCreate is not idempotent: repeated only when the attempt never left.
        var created = await _caller.RunAsync("create sandbox", idempotent: false, _options.ProvisionTimeout, ct =>
            Call(async () => await _client.SandboxCreateAsync(new SandboxCreateRequest { AppId = appId, Definition = definition, EnvironmentName = _options.Environment }, Options(ct)),
                "create sandbox", CloudErrorCodes.ProvisionFailed), cancellationToken, tenant: tenant);
        return created.SandboxId;
    }

    /// <summary>The running sandbox of that name in our app; null when there is none.</summary>
    private async Task<string?> GetFromNameAsync(string name, string? tenant, CancellationToken cancellationToken)
    {
        try
        {
            var found = await _caller.RunAsync("get sandbox by name", idempotent: true, _options.RequestTimeout, ct =>
                Call(async () => await _client.SandboxGetFromNameAsync(
                    new SandboxGetFromNameRequest { SandboxName = name, AppName = _options.AppName, EnvironmentName = _options.Environment }, Options(ct)),
                    "get sandbox by name", CloudErrorCodes.ProvisionFailed), cancellationToken, tenant: tenant);
            return string.IsNullOrEmpty(found.SandboxId) ? null : found.SandboxId;
        }
        catch (ProviderException ex) when (ex.Code == CloudErrorCodes.NotFound)
        {
            return null;
        }
    }

    private async Task TerminateRunAsync(string runId, string? tenant, string? except, CancellationToken cancellationToken)
    {
        if (await GetFromNameAsync(RunNames.For(runId), tenant, cancellationToken) is { } named && named != except)
        {
            _logger.LogWarning("Modal sandbox {SandboxId} of run {RunId} was not the lease's: terminating it too", named, runId);
            await TerminateAsync(named, tenant, cancellationToken);
        }
    }

    private Task TerminateAsync(string sandboxId, string? tenant, CancellationToken cancellationToken) =>
        _caller.RunAsync("terminate sandbox", idempotent: true, _options.RequestTimeout, async ct =>
        {
            try
            {
                await Call(async () => await _client.SandboxTerminateAsync(new SandboxTerminateRequest { SandboxId = sandboxId }, Options(ct)),
                    "terminate sandbox", CloudErrorCodes.ExecutionFailed);
            }
            catch (ProviderException ex) when (ex.Code == CloudErrorCodes.NotFound)
            {
                // Already gone: release is idempotent.
            }
        }, cancellationToken, tenant: tenant);

    private static bool NameTaken(ProviderException ex) => ex.InnerException is RpcException { StatusCode: StatusCode.AlreadyExists };

    public void Dispose()
    {
        _channel.Dispose();
        _setup.Dispose();
    }

    private async Task<ExecutionResult> CollectAsync(string execId, ExecutionSpec spec, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var stdout = new CappedOutput(spec.OutputLimitBytes);
        var stderr = new CappedOutput(spec.OutputLimitBytes);
        using var deadline = new CancellationTokenSource(spec.Timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            var outTask = ReadStreamAsync(execId, FileDescriptor.Stdout, stdout, linked.Token);
            var errTask = ReadStreamAsync(execId, FileDescriptor.Stderr, stderr, linked.Token);
            var codes = await Task.WhenAll(outTask, errTask);
            var exitCode = codes[0] ?? codes[1];
            return new ExecutionResult
            {
                Runtime = Runtime,
                Stdout = stdout.Text(),
                Stderr = stderr.Text(),
                StdoutTruncated = stdout.Truncated,
                StderrTruncated = stderr.Truncated,
                ExitCode = exitCode,
                // 137 = SIGKILL from the OOM killer: we send no signals.
                OomKilled = exitCode == 137,
                WallTimeMs = (long)_time.GetElapsedTime(started).TotalMilliseconds,
            };
        }
        catch (Exception ex) when (ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled }
                                   && deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return new ExecutionResult
            {
                Runtime = Runtime,
                Stdout = stdout.Text(),
                Stderr = stderr.Text(),
                StdoutTruncated = stdout.Truncated,
                StderrTruncated = stderr.Truncated,
                TimedOut = true,
                WallTimeMs = (long)_time.GetElapsedTime(started).TotalMilliseconds,
            };
        }
    }

    /// <summary>
    /// Reads one output stream to its final batch, resuming from the last batch index when the server's long-poll ends, the
    /// connection is cut or a read is stuck: the command runs on in the sandbox, so resuming loses nothing.
    /// </summary>
    private async Task<int?> ReadStreamAsync(string execId, FileDescriptor fd, CappedOutput output, CancellationToken cancellationToken)
    {
        ulong lastBatch = 0;
        var cuts = 0;
        while (true)
        {
            using var read = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            read.CancelAfter(_options.OutputPollTimeout + _options.RequestTimeout);
            string? cut;
            try
            {
                using var call = _client.ContainerExecGetOutput(
                    new ContainerExecGetOutputRequest { ExecId = execId, Timeout = (float)_options.OutputPollTimeout.TotalSeconds, LastBatchIndex = lastBatch, FileDescriptor = fd, GetRawBytes = true },
                    Options(read.Token));
                await foreach (var batch in call.ResponseStream.ReadAllAsync(read.Token))
                {
                    foreach (var item in batch.Items)
                    {
                        // Raw bytes when the server honours get_raw_bytes; older servers send strings.
                        if (!item.MessageBytes.IsEmpty)
                        {
                            output.Append(item.MessageBytes.Span);
                        }
                        else
                        {
                            output.Append(item.Message);
                        }
                    }

                    lastBatch = batch.BatchIndex;
                    if (batch.HasExitCode)
                    {
                        return batch.ExitCode;
                    }
                }

                cut = null;
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.Internal && !cancellationToken.IsCancellationRequested)
            {
                cut = $"the output stream was cut ({ex.Status.Detail})";
            }
            catch (Exception ex) when ((ex is OperationCanceledException || ex is RpcException { StatusCode: StatusCode.Cancelled or StatusCode.DeadlineExceeded })
                                       && read.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                cut = $"a read of the output did not answer within {_options.OutputPollTimeout + _options.RequestTimeout}";
            }
            catch (RpcException ex) when (ex.StatusCode is StatusCode.NotFound or StatusCode.Aborted or StatusCode.FailedPrecondition
                                          && !cancellationToken.IsCancellationRequested)
            {
                throw new ProviderException(Id, ProviderErrors.MentionsOutOfMemory(ex.Status.Detail) ? CloudErrorCodes.OutOfMemory : CloudErrorCodes.SandboxLost,
                    $"modal: sandbox went away during execution ({ex.Status.Detail})", transient: false, ex);
            }

            if (cut is not null)
            {
                if (++cuts > MaxOutputResumes)
                {
                    throw ExecutionFailures.Interrupted(Id, $"the output stream kept failing; last: {cut}");
                }

                _logger.LogWarning("Modal exec {ExecId}: {Reason}; resuming from batch {Batch}", execId, cut, lastBatch);
                continue;
            }

            // The long-poll ended without the final batch: ask the exec itself whether it finished, else resume.
            ContainerExecWaitResponse wait;
            try
            {
                wait = await Call(async () => await _client.ContainerExecWaitAsync(new ContainerExecWaitRequest { ExecId = execId, Timeout = 0 }, Options(cancellationToken)),
                    "exec wait", CloudErrorCodes.ExecutionFailed);
            }
            catch (ProviderException ex) when (ex.Code == CloudErrorCodes.NotFound)
            {
                throw new ProviderException(Id, CloudErrorCodes.SandboxLost, "modal: the exec vanished during execution", transient: false, ex);
            }
            catch (ProviderException ex) when (ex.Transient && !cancellationToken.IsCancellationRequested)
            {
                // Asking is idempotent: a failed ask counts as a cut, and the read resumes.
                if (++cuts > MaxOutputResumes)
                {
                    throw ExecutionFailures.Interrupted(Id, $"the output stream kept failing; last: {ex.Message}", ex);
                }

                continue;
            }

            if (wait.Completed)
            {
                return wait.HasExitCode ? wait.ExitCode : null;
            }
        }
    }

    private async Task<(string AppId, string ImageId)> EnsureAppAndImageAsync(string tenant, CancellationToken cancellationToken)
    {
        if (_appAndImage is { } ready)
        {
            return ready;
        }

        await _setup.WaitAsync(cancellationToken);
        try
        {
            if (_appAndImage is { } again)
            {
                return again;
            }

            // Get-or-create calls: idempotent, so retried on transient failures.
            var app = await _caller.RunAsync("app get-or-create", idempotent: true, _options.RequestTimeout, ct =>
                Call(async () => await _client.AppGetOrCreateAsync(new AppGetOrCreateRequest
                {
                    AppName = _options.AppName,
                    EnvironmentName = _options.Environment,
                    ObjectCreationType = ObjectCreationType.CreateIfMissing,
                }, Options(ct)), "app get-or-create", CloudErrorCodes.ProvisionFailed), cancellationToken, tenant: tenant);

            var image = await _caller.RunAsync("image get-or-create", idempotent: true, _options.RequestTimeout, ct =>
                Call(async () => await _client.ImageGetOrCreateAsync(new ImageGetOrCreateRequest
                {
                    AppId = app.AppId,
                    Image = new Image { DockerfileCommands = { $"FROM {_options.Image}" } },
                }, Options(ct)), "image get-or-create", CloudErrorCodes.ProvisionFailed), cancellationToken, tenant: tenant);

            // A result means the build already ended (a cached image); otherwise join the build until it does.
            if (image.Result is { Status: not GenericResult.Types.GenericStatus.Unspecified } built)
            {
                ThrowIfImageFailed(image.ImageId, built);
            }
            else
            {
                await WaitForImageAsync(image.ImageId, cancellationToken);
            }

            _appAndImage = (app.AppId, image.ImageId);
            return _appAndImage.Value;
        }
        finally
        {
            _setup.Release();
        }
    }

    private async Task WaitForImageAsync(string imageId, CancellationToken cancellationToken)
    {
        // Joining the build stream until it reports a result (immediately for an image already built).
        var lastEntry = "";
        var deadline = _time.GetTimestamp();
        while (_time.GetElapsedTime(deadline) < _options.StartTimeout)
        {
            GenericResult? result = null;
            await Call(async () =>
            {
                using var call = _client.ImageJoinStreaming(new ImageJoinStreamingRequest { ImageId = imageId, Timeout = 55, LastEntryId = lastEntry }, Options(cancellationToken));
                await foreach (var message in call.ResponseStream.ReadAllAsync(cancellationToken))
                {
                    if (!string.IsNullOrEmpty(message.EntryId))
                    {
                        lastEntry = message.EntryId;
                    }

                    if (message.Result is { Status: not GenericResult.Types.GenericStatus.Unspecified })
                    {
                        result = message.Result;
                        break;
                    }
                }

                return true;
            }, "image build", CloudErrorCodes.ProvisionFailed);

            if (result is not null)
            {
                ThrowIfImageFailed(imageId, result);
                return;
            }
        }

        throw new ProviderException(Id, CloudErrorCodes.Timeout, $"modal image {imageId} not ready after {_options.StartTimeout}", transient: true);
    }

    private static void ThrowIfImageFailed(string imageId, GenericResult result)
    {
        if (result.Status != GenericResult.Types.GenericStatus.Success)
        {
            throw new ProviderException(Id, CloudErrorCodes.ProvisionFailed, $"modal image {imageId} failed to build: {result.Exception}");
        }
    }

    private async Task<string> WaitForTaskAsync(string sandboxId, string? tenant, CancellationToken cancellationToken)
    {
        // Polling with a deadline until the sandbox is scheduled; each lookup is an idempotent, resilient call.
        var deadline = _time.GetTimestamp();
        while (true)
        {
            var response = await _caller.RunAsync("get task id", idempotent: true, _options.RequestTimeout, ct =>
                Call(async () => await _client.SandboxGetTaskIdAsync(
                    // The server holds the call up to this long; it must end well within our own per-call timeout.
                    new SandboxGetTaskIdRequest { SandboxId = sandboxId, Timeout = (float)Math.Min(10, _options.RequestTimeout.TotalSeconds / 2) },
                    Options(ct)),
                    "get task id", CloudErrorCodes.ProvisionFailed), cancellationToken, tenant: tenant);
            if (response.TaskResult is { } ended)
            {
                // The sandbox is already over (it failed to start, or was terminated): waiting longer will not help.
                throw new ProviderException(Id, CloudErrorCodes.ProvisionFailed,
                    $"modal sandbox {sandboxId} ended before it could run anything: {ended.Status} {ended.Exception}".TrimEnd());
            }

            if (!string.IsNullOrEmpty(response.TaskId))
            {
                return response.TaskId;
            }

            if (_time.GetElapsedTime(deadline) > _options.StartTimeout)
            {
                throw new ProviderException(Id, CloudErrorCodes.Timeout, $"modal sandbox {sandboxId} not scheduled after {_options.StartTimeout}", transient: true);
            }

            await Task.Delay(_options.StartPollInterval, _time, cancellationToken);
        }
    }

    private async Task TryTerminateAsync(string sandboxId, string tenant)
    {
        try
        {
            await TerminateAsync(sandboxId, tenant, CancellationToken.None);
        }
        catch (ProviderException ex)
        {
            _logger.LogWarning(ex, "Modal sandbox {SandboxId} could not be terminated after a failed start", sandboxId);
        }
    }

    private CallOptions Options(CancellationToken cancellationToken) => new(
        headers: new Metadata
        {
            { "x-modal-token-id", _options.TokenId ?? "" },
            { "x-modal-token-secret", _options.TokenSecret ?? "" },
            { "x-modal-client-type", "1" },
            { "x-modal-client-version", _options.ClientVersion },
        },
        cancellationToken: cancellationToken);

    /// <summary>Runs one RPC and maps gRPC statuses to <see cref="ProviderException"/>s.</summary>
    private static async Task<T> Call<T>(Func<Task<T>> rpc, string operation, string failureCode)
    {
        try
        {
            return await rpc();
        }
        catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled)
        {
            throw Map(ex, operation, failureCode);
        }
    }

    internal static ProviderException Map(RpcException ex, string operation, string failureCode)
    {
        var mapped = MapStatus(ex, operation, failureCode);
        // A status the server chose is the server refusing the call before acting on it; an Unavailable whose connection
        // never opened means the call never left. Either way nothing started.
        return ex.StatusCode is StatusCode.InvalidArgument or StatusCode.NotFound or StatusCode.AlreadyExists or StatusCode.PermissionDenied
            or StatusCode.Unauthenticated or StatusCode.ResourceExhausted or StatusCode.FailedPrecondition or StatusCode.OutOfRange or StatusCode.Unimplemented
            || ProviderErrors.NotDelivered(ex)
            ? mapped.AsNeverStarted()
            : mapped;
    }

    private static ProviderException MapStatus(RpcException ex, string operation, string failureCode)
    {
        var detail = ex.Status.Detail;
        var text = $"modal {operation} failed: {ex.StatusCode}: {detail}";
        if (ProviderErrors.MentionsOutOfMemory(detail))
        {
            return new ProviderException(Id, CloudErrorCodes.OutOfMemory, text, false, ex);
        }

        return ex.StatusCode switch
        {
            StatusCode.Unauthenticated => new ProviderException(Id, CloudErrorCodes.Unauthorized, text, false, ex),
            StatusCode.PermissionDenied when detail.Contains("quota", StringComparison.OrdinalIgnoreCase) || detail.Contains("billing", StringComparison.OrdinalIgnoreCase)
                => new ProviderException(Id, CloudErrorCodes.QuotaExceeded, text, false, ex),
            StatusCode.PermissionDenied => new ProviderException(Id, CloudErrorCodes.Forbidden, text, false, ex),
            StatusCode.NotFound => new ProviderException(Id, CloudErrorCodes.NotFound, text, false, ex),
            // Modal's concurrency and rate limits: clears by itself.
            StatusCode.ResourceExhausted => new ProviderException(Id, CloudErrorCodes.RateLimited, text, true, ex),
            StatusCode.Unavailable or StatusCode.Aborted => new ProviderException(Id, CloudErrorCodes.Unavailable, text, true, ex),
            StatusCode.DeadlineExceeded => new ProviderException(Id, CloudErrorCodes.Timeout, text, true, ex),
            StatusCode.Internal or StatusCode.Unknown => new ProviderException(Id, failureCode, text, true, ex),
            _ => new ProviderException(Id, failureCode, text, false, ex),
        };
    }
}
