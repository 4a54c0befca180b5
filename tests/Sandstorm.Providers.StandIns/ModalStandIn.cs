using System.Collections.Concurrent;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Providers.Modal.Protocol;

namespace Sandstorm.Providers.StandIns;

/// <summary>
/// gRPC stand-in for Modal (remote, unreachable from here) serving the slice of <c>modal.client.ModalClient</c> the adapter uses,
/// from the same .proto slice (field numbers of Modal's api.proto). Exec commands really run locally in a per-sandbox directory
/// (the sandbox's workdir) and run on whatever happens to the calls. Sandbox names are unique among running sandboxes
/// (ALREADY_EXISTS otherwise). Fault operations: app, image, create, byname, taskid, exec, output, wait, terminate;
/// FaultKind.Die on "exec" kills the sandbox mid-run, CutStream and Silent act on "output".
/// </summary>
public sealed class ModalStandIn : ICloudStandIn
{
    public const string TokenId = "ak-standin";
    public const string TokenSecret = "as-standin";

    private StandInHost? _host;

    internal ModalService Service { get; } = new();

    public string Provider => "modal";

    public FaultPlan Faults => Service.Faults;

    /// <summary>Sandboxes created and not yet terminated.</summary>
    public int Live => Service.Live;

    public int Executions => Service.Executions;

    public int ExecutionsFor(string runId) => Service.ExecutionsByName(Cloud.RunNames.For(runId));

    public int LiveFor(string runId) => Service.LiveByName(Cloud.RunNames.For(runId));

    public Uri BaseUrl => _host!.BaseUrl;

    public static async Task<ModalStandIn> StartAsync()
    {
        var standIn = new ModalStandIn();
        standIn._host = await StandInHost.StartAsync(
            app => app.MapGrpcService<ModalService>(),
            http2Only: true,
            services =>
            {
                services.AddGrpc();
                services.AddSingleton(standIn.Service);
            });
        return standIn;
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        Service.Dispose();
    }

    internal sealed class ModalService : ModalClient.ModalClientBase, IDisposable
    {
        private readonly ConcurrentDictionary<string, SandboxState> _sandboxes = new();
        private readonly ConcurrentDictionary<string, ExecState> _execs = new();
        private readonly ConcurrentDictionary<string, int> _executionsByName = new();
        private int _next;
        private int _executions;

        public FaultPlan Faults { get; } = new(new Dictionary<CloudStep, string>
        {
            [CloudStep.Create] = "create",
            [CloudStep.Start] = "exec",
            [CloudStep.Stream] = "output",
            [CloudStep.Release] = "terminate",
        });

        public int Live => _sandboxes.Count;

        public int Executions => _executions;

        public int ExecutionsByName(string name) => _executionsByName.GetValueOrDefault(name);

        public int LiveByName(string name) => _sandboxes.Values.Count(s => s.Name == name);

        public Sandstorm.Providers.Modal.Protocol.Sandbox? LastDefinition { get; private set; }

        public SandboxGetTaskIdRequest? LastTaskIdRequest { get; private set; }

        public ContainerExecRequest? LastExecRequest { get; private set; }

        public ContainerExecGetOutputRequest? LastOutputRequest { get; private set; }

        /// <summary>When set, a new sandbox's task ends at once with this result (an image that cannot start, say).</summary>
        public GenericResult? EndTasksWith { get; set; }

        public override async Task<AppGetOrCreateResponse> AppGetOrCreate(AppGetOrCreateRequest request, ServerCallContext context)
        {
            await CheckAsync("app", context);
            return new AppGetOrCreateResponse { AppId = "ap-" + request.AppName };
        }

        public override async Task<ImageGetOrCreateResponse> ImageGetOrCreate(ImageGetOrCreateRequest request, ServerCallContext context)
        {
            await CheckAsync("image", context);
            if (request.Image.DockerfileCommands.Count == 0 || !request.Image.DockerfileCommands[0].StartsWith("FROM ", StringComparison.Ordinal))
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, "image needs a FROM"));
            }

            return new ImageGetOrCreateResponse { ImageId = "im-standin" };
        }

        public override async Task ImageJoinStreaming(ImageJoinStreamingRequest request, IServerStreamWriter<ImageJoinStreamingResponse> responseStream, ServerCallContext context)
        {
            await CheckAsync("image", context);
            await responseStream.WriteAsync(new ImageJoinStreamingResponse { EntryId = "1", Result = new GenericResult { Status = GenericResult.Types.GenericStatus.Success }, Eof = true });
        }

        public override async Task<SandboxCreateResponse> SandboxCreate(SandboxCreateRequest request, ServerCallContext context)
        {
            var fault = await CheckAsync("create", context);
            LastDefinition = request.Definition;
            var id = $"sb-{Interlocked.Increment(ref _next):x4}";
            var name = request.Definition.HasName ? request.Definition.Name : null;
            lock (_sandboxes)
            {
                if (name is not null && _sandboxes.Values.Any(s => s.Name == name))
                {
                    throw new RpcException(new Status(StatusCode.AlreadyExists, $"Sandbox with name '{name}' already exists"));
                }

                _sandboxes[id] = new SandboxState("ta-" + id, new SandboxFs(request.Definition.Workdir ?? "/")) { Name = name };
            }

            await AfterAsync(fault, context);
            return new SandboxCreateResponse { SandboxId = id };
        }

        public override async Task<SandboxGetFromNameResponse> SandboxGetFromName(SandboxGetFromNameRequest request, ServerCallContext context)
        {
            await CheckAsync("byname", context);
            var found = _sandboxes.FirstOrDefault(s => s.Value.Name == request.SandboxName);
            return found.Key is { } id
                ? new SandboxGetFromNameResponse { SandboxId = id }
                : throw new RpcException(new Status(StatusCode.NotFound, $"Sandbox with name '{request.SandboxName}' not found"));
        }

        public override async Task<SandboxGetTaskIdResponse> SandboxGetTaskId(SandboxGetTaskIdRequest request, ServerCallContext context)
        {
            await CheckAsync("taskid", context);
            LastTaskIdRequest = request;
            if (!_sandboxes.TryGetValue(request.SandboxId, out var s))
            {
                throw new RpcException(new Status(StatusCode.NotFound, "sandbox not found"));
            }

            return EndTasksWith is { } ended
                ? new SandboxGetTaskIdResponse { TaskResult = ended }
                : new SandboxGetTaskIdResponse { TaskId = s.TaskId };
        }

        public override async Task<SandboxTerminateResponse> SandboxTerminate(SandboxTerminateRequest request, ServerCallContext context)
        {
            var fault = await CheckAsync("terminate", context);
            if (!_sandboxes.TryRemove(request.SandboxId, out var s))
            {
                throw new RpcException(new Status(StatusCode.NotFound, $"Sandbox {request.SandboxId} not found"));
            }

            s.Kill();
            s.Fs.Dispose();
            await AfterAsync(fault, context);
            return new SandboxTerminateResponse();
        }

        public override async Task<ContainerExecResponse> ContainerExec(ContainerExecRequest request, ServerCallContext context)
        {
            var fault = await CheckAsync("exec", context);
            LastExecRequest = request;
            var sandbox = _sandboxes.Values.FirstOrDefault(s => s.TaskId == request.TaskId)
                ?? throw new RpcException(new Status(StatusCode.NotFound, "task not found"));
            Interlocked.Increment(ref _executions);
            if (sandbox.Name is { } name)
            {
                _executionsByName.AddOrUpdate(name, 1, (_, n) => n + 1);
            }

            var execId = $"ex-{Interlocked.Increment(ref _next):x4}";
            var exec = new ExecState();
            _execs[execId] = exec;
            var process = LocalExec.Start(request.Command[0], request.Command.Skip(1), sandbox.Fs.Home, null, sandbox.Fs.Home);
            sandbox.Running.Add(process);
            _ = Task.Run(async () =>
            {
                var exit = await process.PumpAsync((isErr, chunk) =>
                {
                    exec.Add(isErr ? FileDescriptor.Stderr : FileDescriptor.Stdout, chunk);
                    if (fault?.Kind == FaultKind.Die)
                    {
                        // The sandbox dies mid-run: its task and everything in it are gone.
                        exec.Died = true;
                        process.Kill();
                    }

                    return Task.CompletedTask;
                }, TimeSpan.FromMinutes(2), CancellationToken.None);
                exec.Finish(exec.Died ? null : exit);
                process.Dispose();
            });
            await AfterAsync(fault, context);
            return new ContainerExecResponse { ExecId = execId };
        }

        public override async Task ContainerExecGetOutput(ContainerExecGetOutputRequest request, IServerStreamWriter<RuntimeOutputBatch> responseStream, ServerCallContext context)
        {
            var fault = await CheckAsync("output", context);
            LastOutputRequest = request;
            if (!_execs.TryGetValue(request.ExecId, out var exec))
            {
                throw new RpcException(new Status(StatusCode.NotFound, "exec not found"));
            }

            if (fault?.Kind == FaultKind.Silent)
            {
                // A stuck read: nothing at all, the call never ends by itself. The command runs on.
                await FaultPlan.HangAsync(context.CancellationToken);
                return;
            }

            var next = request.LastBatchIndex;
            using var poll = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
            poll.CancelAfter(TimeSpan.FromSeconds(request.Timeout > 0 ? request.Timeout : 55));
            while (!poll.IsCancellationRequested)
            {
                var (items, done, exit, version) = exec.Since(request.FileDescriptor, (int)next);
                if (items.Count > 0)
                {
                    next += (ulong)items.Count;
                    var batch = new RuntimeOutputBatch { BatchIndex = next };
                    // Raw bytes for clients that ask for them; strings (as older servers send) for the others.
                    batch.Items.AddRange(items.Select(m => request.GetRawBytes
                        ? new RuntimeOutputMessage { FileDescriptor = request.FileDescriptor, MessageBytes = ByteString.CopyFrom(m) }
                        : new RuntimeOutputMessage { FileDescriptor = request.FileDescriptor, Message = Encoding.UTF8.GetString(m) }));
                    await responseStream.WriteAsync(batch);
                    if (fault?.Kind == FaultKind.CutStream)
                    {
                        // The connection drops after the first batch; the command runs on.
                        context.GetHttpContext().Abort();
                        return;
                    }

                    continue;
                }

                if (done)
                {
                    if (exec.Died)
                    {
                        throw new RpcException(new Status(StatusCode.NotFound, "Task terminated: container was stopped"));
                    }

                    var final = new RuntimeOutputBatch { BatchIndex = next };
                    if (exit is { } code)
                    {
                        final.ExitCode = code;
                    }

                    await responseStream.WriteAsync(final);
                    return;
                }

                await exec.WaitForChangeAsync(version, poll.Token);
            }
        }

        public override async Task<ContainerExecWaitResponse> ContainerExecWait(ContainerExecWaitRequest request, ServerCallContext context)
        {
            await CheckAsync("wait", context);
            if (!_execs.TryGetValue(request.ExecId, out var exec))
            {
                throw new RpcException(new Status(StatusCode.NotFound, "exec not found"));
            }

            var (_, done, exit, _) = exec.Since(FileDescriptor.Stdout, int.MaxValue);
            var response = new ContainerExecWaitResponse { Completed = done };
            if (exit is { } code)
            {
                response.ExitCode = code;
            }

            return response;
        }

        public void Dispose()
        {
            foreach (var s in _sandboxes.Values)
            {
                s.Kill();
                s.Fs.Dispose();
            }
        }

        /// <summary>Checks the credentials and applies a fault that comes before the call acts; returns the fault, if any.</summary>
        private async Task<Fault?> CheckAsync(string operation, ServerCallContext context)
        {
            var headers = context.RequestHeaders;
            if (headers.GetValue("x-modal-token-id") != TokenId || headers.GetValue("x-modal-token-secret") != TokenSecret)
            {
                throw new RpcException(new Status(StatusCode.Unauthenticated, "Invalid token id or secret"));
            }

            var fault = Faults.Next(operation);
            switch (fault?.Kind)
            {
                case FaultKind.Status:
                    throw new RpcException(new Status((StatusCode)fault.Status, fault.Body ?? "stand-in fault"));
                case FaultKind.Refuse:
                    throw new RpcException(new Status(StatusCode.FailedPrecondition, "stand-in refused the call"));
                case FaultKind.Reset:
                    // What a client sees when the server is gone.
                    throw new RpcException(new Status(StatusCode.Unavailable, "connection reset by stand-in"));
                case FaultKind.Hang:
                    await FaultPlan.HangAsync(context.CancellationToken);
                    throw new RpcException(new Status(StatusCode.Cancelled, "the client gave up"));
                case FaultKind.Slow:
                    await Task.Delay(fault.Delay, context.CancellationToken);
                    break;
            }

            return fault;
        }

        /// <summary>Applies a fault that comes after the call acted: the connection drops, or no answer comes.</summary>
        private static async Task AfterAsync(Fault? fault, ServerCallContext context)
        {
            switch (fault?.Kind)
            {
                case FaultKind.DropAfter:
                    context.GetHttpContext().Abort();
                    throw new RpcException(new Status(StatusCode.Unavailable, "connection dropped by stand-in"));
                case FaultKind.HangAfter:
                    await FaultPlan.HangAsync(context.CancellationToken);
                    throw new RpcException(new Status(StatusCode.Cancelled, "the client gave up"));
            }
        }

        private sealed record SandboxState(string TaskId, SandboxFs Fs)
        {
            public string? Name { get; init; }

            public ConcurrentBag<LocalExec> Running { get; } = [];

            public void Kill()
            {
                foreach (var p in Running)
                {
                    p.Kill();
                }
            }
        }

        private sealed class ExecState
        {
            private readonly Lock _gate = new();
            private readonly List<byte[]> _stdout = [];
            private readonly List<byte[]> _stderr = [];
            private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            private int _version;
            private bool _done;
            private int? _exit;

            public bool Died { get; set; }

            public void Add(FileDescriptor fd, byte[] chunk)
            {
                lock (_gate)
                {
                    (fd == FileDescriptor.Stderr ? _stderr : _stdout).Add(chunk);
                    Signal();
                }
            }

            public void Finish(int? exit)
            {
                lock (_gate)
                {
                    _done = true;
                    _exit = exit;
                    Signal();
                }
            }

            public (List<byte[]> Items, bool Done, int? Exit, int Version) Since(FileDescriptor fd, int index)
            {
                lock (_gate)
                {
                    var list = fd == FileDescriptor.Stderr ? _stderr : _stdout;
                    return (index < list.Count ? list.Skip(index).ToList() : [], _done, _exit, _version);
                }
            }

            public async Task WaitForChangeAsync(int version, CancellationToken cancellationToken)
            {
                Task wait;
                lock (_gate)
                {
                    if (_version != version)
                    {
                        return;
                    }

                    wait = _changed.Task;
                }

                await wait.WaitAsync(cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }

            private void Signal()
            {
                _version++;
                _changed.TrySetResult();
                _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }
}
