using System.ComponentModel;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using Sandstorm.Api.Sandboxes;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Sandboxes;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.Signing;
using Sandstorm.Security.Verification;

namespace Sandstorm.Api.Mcp;

/// <summary>
/// The MCP tools: one-shot runs (<c>run_code</c>, <c>get_run</c>, <c>verify_provenance</c>) and kept sandboxes
/// (<c>create_sandbox</c>, <c>run_command</c>, <c>write_file</c>, <c>read_file</c>, <c>list_files</c>, <c>kill_sandbox</c>).
/// A thin surface over <see cref="RunService"/>, <see cref="SandboxService"/> and the provenance library, like the REST
/// endpoints: requests are read with the same strict JSON rules, and another tenant's ids are not found.
/// </summary>
[McpServerToolType]
public sealed class SandstormTools(
    IHttpContextAccessor accessor,
    RunService runs,
    SandboxService sandboxes,
    IProvenanceService provenance,
    IServiceProvider services,
    ILogger<SandstormTools> logger)
{
    /// <summary>Most bytes of each stream (stdout, stderr) and of a file that a tool result carries; the REST API moves more.</summary>
    public const int MaxResultBytes = 1024 * 1024;

    [McpServerTool(Name = "run_code", OpenWorld = false)]
    [Description("Runs a program once in a sandbox placed by intent and waits for its result (exit code, stdout, stderr, cost, provider, provenance log index). "
        + "If it has not finished within the wait, the result has its id and status: poll it with get_run.")]
    public Task<CallToolResult> RunCodeAsync(
        [Description("The program's source code.")] string code,
        [Description("python, javascript, typescript or bash.")] string language,
        [Description("Least isolation: standard (default), strong, maximum, or none (only for tenants that opted in).")] string? isolation = null,
        [Description("Placement strategy: balanced (default), optimize_cost, optimize_latency or optimize_carbon.")] string? strategy = null,
        [Description("Most the run may cost, in USD; placements predicted to cost more are not used.")] decimal? maxCost = null,
        [Description("Wall-clock timeout in milliseconds (1000 to 900000; default 30000).")] int? timeoutMs = null,
        [Description("Input files by relative path (UTF-8 text).")] Dictionary<string, string>? files = null,
        CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var tenant = Tenant();
        var body = new JsonObject { ["code"] = code, ["language"] = language };
        Put(body, "isolationLevel", isolation);
        Put(body, "strategy", strategy);
        if (timeoutMs is { } timeout)
        {
            body["timeout"] = timeout;
        }

        if (maxCost is { } cost)
        {
            body["constraints"] = new JsonObject { ["maxCost"] = cost };
        }

        if (files is not null)
        {
            body["files"] = JsonSerializer.SerializeToNode(files);
        }

        var request = Read<RunRequest>(body);
        var client = DurableClient();
        var (runId, created) = await runs.SubmitAsync(client, tenant, request, null, cancellationToken, waiting: true);
        var result = await runs.WaitAsync(tenant, runId, runs.SettleBudget(request.Timeout), cancellationToken, justCreated: created)
            ?? new RunResult { Id = runId, Status = RunStatus.Queued };
        return View(result);
    }, runFailureIsError: true);

    [McpServerTool(Name = "get_run", ReadOnly = true, OpenWorld = false)]
    [Description("The state or result of a run (as run_code returns it).")]
    public Task<CallToolResult> GetRunAsync(
        [Description("The run's id (run_...).")] string runId,
        CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var tenant = Tenant();
        var result = await runs.GetAsync(tenant, runId, cancellationToken)
            ?? throw new SandstormException(ErrorCodes.NotFound, $"run '{runId}' was not found", 404);
        return View(result);
    });

    [McpServerTool(Name = "verify_provenance", ReadOnly = true, OpenWorld = false)]
    [Description("Verifies the signed provenance of a finished run (or an ended sandbox): envelope signature against the control plane's key, "
        + "the run's stdout/stderr against their signed digests, inclusion in the transparency log and the signed tree head.")]
    public Task<CallToolResult> VerifyProvenanceAsync(
        [Description("The run's id (run_...) or an ended sandbox's id (sbx_...).")] string id,
        CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var tenant = Tenant();
        RunResult? run = null;
        if (id.StartsWith("sbx_", StringComparison.Ordinal))
        {
            _ = await sandboxes.GetAsync(tenant, id, cancellationToken)
                ?? throw new SandstormException(ErrorCodes.NotFound, $"sandbox '{id}' was not found", 404);
        }
        else
        {
            run = await runs.GetAsync(tenant, id, cancellationToken)
                ?? throw new SandstormException(ErrorCodes.NotFound, $"run '{id}' was not found", 404);
        }

        var bundle = await provenance.GetBundleAsync(tenant, id, cancellationToken)
            ?? throw new SandstormException(
                ErrorCodes.Conflict,
                run is null ? $"sandbox '{id}' has not ended yet: its record is signed when it ends" : $"run '{id}' has no provenance yet (status {Snake(run.Status)}): it is signed when the run settles",
                409);

        // The trusted key is the one this control plane holds under the bundle's key id, never the key the bundle embeds.
        var signer = services.GetRequiredService<IProvenanceSigner>();
        var key = await signer.GetPublicKeyAsync(bundle.KeyId, cancellationToken);
        var outputs = run is { Truncated: false };
        var verdict = BundleVerifier.Verify(bundle, new BundleVerificationOptions
        {
            TrustedPublicKeyPem = key.PublicKeyPem,
            Stdout = outputs ? Encoding.UTF8.GetBytes(run!.Stdout ?? "") : null,
            Stderr = outputs ? Encoding.UTF8.GetBytes(run!.Stderr ?? "") : null,
        });
        return new
        {
            id,
            verified = verdict.Ok,
            logIndex = bundle.LogIndex,
            keyId = bundle.KeyId,
            treeSize = bundle.TreeHead.TreeSize,
            passed = verdict.Passed,
            failures = verdict.Failures,
            warnings = verdict.Warnings,
        };
    });

    [McpServerTool(Name = "create_sandbox", OpenWorld = false)]
    [Description("Creates a kept sandbox (files and installed state persist between commands), placed by intent. Returns its id, placement and expiry; "
        + "end it with kill_sandbox (it also ends by itself at its expiry).")]
    public Task<CallToolResult> CreateSandboxAsync(
        [Description("Least isolation: standard (default), strong, maximum, or none (only for tenants that opted in).")] string? isolation = null,
        [Description("Placement strategy: balanced (default), optimize_cost, optimize_latency or optimize_carbon.")] string? strategy = null,
        [Description("Most the sandbox may cost, in USD.")] decimal? maxCost = null,
        [Description("Lifetime in seconds from now (default 300; capped per tenant).")] int? timeoutSeconds = null,
        [Description("Labels to find the sandbox again.")] Dictionary<string, string>? metadata = null,
        [Description("Environment variables of every command.")] Dictionary<string, string>? envVars = null,
        CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var tenant = Tenant();
        var body = new JsonObject();
        Put(body, "isolationLevel", isolation);
        Put(body, "strategy", strategy);
        if (maxCost is { } cost)
        {
            body["constraints"] = new JsonObject { ["maxCost"] = cost };
        }

        if (timeoutSeconds is { } timeout)
        {
            body["timeout"] = timeout;
        }

        if (metadata is not null)
        {
            body["metadata"] = JsonSerializer.SerializeToNode(metadata);
        }

        if (envVars is not null)
        {
            body["envVars"] = JsonSerializer.SerializeToNode(envVars);
        }

        var (sandbox, _) = await sandboxes.CreateAsync(DurableClient(), tenant, Read<SandboxCreateRequest>(body), cancellationToken);
        return sandbox;
    });

    [McpServerTool(Name = "run_command", OpenWorld = false)]
    [Description("Runs a shell command (bash -c) in a kept sandbox and waits for it to end: exit code, stdout, stderr, status "
        + "(exited, killed, timed_out or sandbox_ended).")]
    public Task<CallToolResult> RunCommandAsync(
        [Description("The sandbox's id (sbx_...).")] string sandboxId,
        [Description("The command line, run with bash -c.")] string cmd,
        [Description("Working directory (default /home/user).")] string? cwd = null,
        [Description("The command's own timeout in milliseconds (default 60000), separate from the sandbox's lifetime.")] int? timeoutMs = null,
        [Description("Environment variables of this command.")] Dictionary<string, string>? env = null,
        CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var tenant = Tenant();
        var body = new JsonObject { ["cmd"] = cmd };
        Put(body, "cwd", cwd);
        if (timeoutMs is { } timeout)
        {
            body["timeout"] = timeout;
        }

        if (env is not null)
        {
            body["env"] = JsonSerializer.SerializeToNode(env);
        }

        var command = await sandboxes.StartCommandAsync(tenant, sandboxId, Read<CommandRequest>(body), cancellationToken);
        var stdout = new Capture();
        var stderr = new Capture();
        var gap = false;
        await foreach (var e in command.ReadAsync(0, cancellationToken))
        {
            switch (e.Kind)
            {
                case CommandEventKind.Stdout: stdout.Add(e.Data.Span); break;
                case CommandEventKind.Stderr: stderr.Add(e.Data.Span); break;
                case CommandEventKind.Gap: gap = true; break;
                default: break;
            }
        }

        var end = command.End!;
        return new
        {
            commandId = command.CommandId,
            sandboxId,
            status = end.Status,
            exitCode = end.ExitCode,
            signal = end.Signal,
            error = end.Error,
            stdout = stdout.Text,
            stderr = stderr.Text,
            truncated = gap || stdout.Truncated || stderr.Truncated,
            durationMs = (long)(end.At - command.StartedAt).TotalMilliseconds,
        };
    });

    [McpServerTool(Name = "write_file", Destructive = true, OpenWorld = false)]
    [Description("Writes a file in a kept sandbox (whole or not at all; parents are created). Paths are under /home/user (relative ones too) or /tmp.")]
    public Task<CallToolResult> WriteFileAsync(
        [Description("The sandbox's id (sbx_...).")] string sandboxId,
        [Description("Where to write: absolute under /home/user or /tmp, or relative to /home/user.")] string path,
        [Description("The content: UTF-8 text, or base64 with encoding=base64.")] string content,
        [Description("text (default) or base64.")] string? encoding = null,
        CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var bytes = Decode(content, encoding);
        return await OnFilesAsync(sandboxId, async session =>
        {
            using var stream = new MemoryStream(bytes, writable: false);
            return SandboxEndpoints.Entry(await session.WriteFileAsync(path, stream, SandboxService.MaxFileBytes, cancellationToken));
        }, cancellationToken);
    });

    [McpServerTool(Name = "read_file", ReadOnly = true, OpenWorld = false)]
    [Description("Reads a file of a kept sandbox (at most 1 MiB through MCP): its content as UTF-8 text, or base64 with encoding=base64.")]
    public Task<CallToolResult> ReadFileAsync(
        [Description("The sandbox's id (sbx_...).")] string sandboxId,
        [Description("The file: absolute under /home/user or /tmp, or relative to /home/user.")] string path,
        [Description("text (default; invalid UTF-8 is replaced) or base64.")] string? encoding = null,
        CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var base64 = Base64(encoding);
        return await OnFilesAsync(sandboxId, async session =>
        {
            using var buffer = new MemoryStream();
            var entry = await session.ReadFileAsync(path, MaxResultBytes, _ => buffer, cancellationToken);
            return new
            {
                path = entry.Path,
                size = entry.Size,
                encoding = base64 ? "base64" : "text",
                content = base64 ? Convert.ToBase64String(buffer.GetBuffer(), 0, (int)buffer.Length) : Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length),
            };
        }, cancellationToken);
    });

    [McpServerTool(Name = "list_files", ReadOnly = true, OpenWorld = false)]
    [Description("Lists a directory of a kept sandbox, depth levels down (default 1): name, type, path, size, mode, modification time.")]
    public Task<CallToolResult> ListFilesAsync(
        [Description("The sandbox's id (sbx_...).")] string sandboxId,
        [Description("The directory (default /home/user).")] string? path = null,
        [Description("Levels down, 1 to 32 (default 1).")] int? depth = null,
        CancellationToken cancellationToken = default) => Guard(async () =>
    {
        if (depth is < 1 or > 32)
        {
            throw Invalid("depth", "depth is 1 to 32");
        }

        return await OnFilesAsync(sandboxId, async session =>
            new { entries = (await session.ListAsync(path ?? "/home/user", depth ?? 1, cancellationToken)).Select(SandboxEndpoints.Entry).ToList() },
            cancellationToken);
    });

    [McpServerTool(Name = "kill_sandbox", Destructive = true, Idempotent = false, OpenWorld = false)]
    [Description("Ends a kept sandbox now: everything in it is killed, its life billed and its record signed (see verify_provenance).")]
    public Task<CallToolResult> KillSandboxAsync(
        [Description("The sandbox's id (sbx_...).")] string sandboxId,
        CancellationToken cancellationToken = default) => Guard(async () =>
    {
        var tenant = Tenant();
        return await sandboxes.EndAsync(DurableClient(), tenant, sandboxId, SandboxStatus.Stopped, cancellationToken) switch
        {
            null => throw new SandstormException(ErrorCodes.NotFound, $"sandbox '{sandboxId}' was not found", 404),
            false => throw new SandstormException(ErrorCodes.SandboxEnded, $"sandbox '{sandboxId}' has already ended", 409),
            true => new { id = sandboxId, status = "stopping" },
        };
    });

    private static RunView View(RunResult r) => new(
        r.Id, r.Status, r.ExitCode, r.Stdout, r.Stderr, r.Truncated, r.Duration, r.Cost, r.Provider, r.Runtime, r.Region,
        r.Provenance?.LogIndex, r.Error, r.Shield, r.CreatedAt, r.CompletedAt);

    private async Task<CallToolResult> Guard(Func<Task<object>> tool, bool runFailureIsError = false)
    {
        try
        {
            var value = await tool();
            var result = ToolResults.Ok(value);
            // A run that never ran (refused, no placement) is run_code's failure; a program that exited non-zero is not.
            if (runFailureIsError && value is RunView { Error: { } failure, ExitCode: null })
            {
                result.IsError = true;
                result.Content = [new TextContentBlock { Text = $"{failure.Code}: {failure.Message}" }, .. result.Content];
            }

            return result;
        }
        catch (SandstormException e)
        {
            return ToolResults.Error(e);
        }
        catch (JsonException e)
        {
            return ToolResults.Error(JsonBody.Malformed(e, "tool input"));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var trace = accessor.HttpContext?.TraceIdentifier;
            logger.LogError(e, "MCP tool failed (trace {TraceId})", trace);
            return ToolResults.Error(new SandstormException(ErrorCodes.Internal, $"internal error (trace {trace}); the details are in the server log", 500));
        }
    }

    private async Task<object> OnFilesAsync(string sandboxId, Func<ISandboxSession, Task<object>> operation, CancellationToken cancellationToken)
    {
        var tenant = Tenant();
        var live = await sandboxes.LiveAsync(services.GetService<DurableTaskClient>(), tenant, sandboxId, cancellationToken);
        try
        {
            return await operation(live.Session);
        }
        catch (SandboxException e)
        {
            throw SandboxService.Problem(e, live.Record);
        }
    }

    private string Tenant() =>
        accessor.HttpContext?.Items[McpEndpoints.TenantItem] as string
        ?? throw new SandstormException(ErrorCodes.Unauthorized, "an API key is required: Authorization: Bearer <key>", 401);

    private DurableTaskClient DurableClient() =>
        services.GetService<DurableTaskClient>()
        ?? throw new SandstormException(ErrorCodes.NotSupported, "this host has no durable task client for MCP tools that start runs or sandboxes", 501);

    /// <summary>Reads a tool's arguments as the REST body they stand for, with the same strict rules and field-naming errors.</summary>
    private static T Read<T>(JsonObject body)
        where T : class
    {
        try
        {
            var value = body.Deserialize<T>(SandstormJson.Strict) ?? throw new SandstormException(ErrorCodes.MalformedJson, "the arguments are empty", 400);
            Core.Validation.NullElements.Reject(value);
            return value;
        }
        catch (JsonException e)
        {
            throw JsonBody.Malformed(e, typeof(T).Name);
        }
    }

    private static void Put(JsonObject body, string name, string? value)
    {
        if (value is not null)
        {
            body[name] = value;
        }
    }

    private static bool Base64(string? encoding) => (encoding ?? "text") switch
    {
        "text" => false,
        "base64" => true,
        _ => throw Invalid("encoding", "encoding is text or base64"),
    };

    private static byte[] Decode(string content, string? encoding)
    {
        if (!Base64(encoding))
        {
            return Encoding.UTF8.GetBytes(content);
        }

        try
        {
            return Convert.FromBase64String(content);
        }
        catch (FormatException)
        {
            throw Invalid("content", "content is not valid base64");
        }
    }

    private static string Snake(RunStatus status) => JsonSerializer.Serialize(status, SandstormJson.Options).Trim('"');

    private static SandstormException Invalid(string field, string message) =>
        new(ErrorCodes.ValidationFailed, message, 400, new Dictionary<string, string[]> { [field] = [message] });

    /// <summary>A run as the run tools show it: the outcome, what it cost, where it ran, and its provenance log index.</summary>
    private sealed record RunView(
        string Id,
        RunStatus Status,
        int? ExitCode,
        string? Stdout,
        string? Stderr,
        bool Truncated,
        long? DurationMs,
        CostBreakdown? Cost,
        string? Provider,
        string? Runtime,
        string? Region,
        long? ProvenanceLogIndex,
        RunError? Error,
        ShieldReport? Shield,
        DateTimeOffset? CreatedAt,
        DateTimeOffset? CompletedAt);

    /// <summary>A stream's output up to <see cref="MaxResultBytes"/>, decoded as UTF-8 at the end.</summary>
    private sealed class Capture
    {
        private readonly MemoryStream _bytes = new();

        public bool Truncated { get; private set; }

        public string Text => Encoding.UTF8.GetString(_bytes.GetBuffer(), 0, (int)_bytes.Length);

        public void Add(ReadOnlySpan<byte> data)
        {
            var room = MaxResultBytes - (int)_bytes.Length;
            if (data.Length > room)
            {
                Truncated = true;
                data = data[..Math.Max(0, room)];
            }

            _bytes.Write(data);
        }
    }
}
