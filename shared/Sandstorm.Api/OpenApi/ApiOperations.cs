using Sandstorm.Api.Batches;
using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Api.OpenApi;

/// <summary>A body an operation takes: its media type and, when it is JSON of a contract, that contract.</summary>
public sealed record BodySpec(string MediaType, Type? Type = null);

/// <summary>A success response: status, what it means, and its body (none when <see cref="MediaType"/> is null).</summary>
public sealed record ResponseSpec(int Status, string Description, string? MediaType = "application/json", Type? Type = null);

/// <summary>What the OpenAPI document says of one operation of <see cref="ApiRoutes.All"/>.</summary>
public sealed record OperationSpec(string Tag, string Summary, BodySpec? Request, IReadOnlyList<ResponseSpec> Responses, IReadOnlyList<int> Errors, bool E2BWire = false);

/// <summary>An RFC 9457 problem as Sandstorm answers it (documentation of the wire shape).</summary>
public sealed record ApiProblem(string Type, string Title, int Status, string Detail, string Code, IReadOnlyDictionary<string, string[]>? Errors);

/// <summary>An error on E2B's wire, in E2B's own shape.</summary>
public sealed record E2BWireError(int Code, string Message);

/// <summary>Request and response of every operation, by the function name of <see cref="ApiRoutes.All"/> (a test checks none is missing).</summary>
public static class ApiOperations
{
    private const string Json = "application/json";

    private static readonly int[] Read = [401, 404, 500];
    private static readonly int[] Body = [400, 401, 413, 415, 500];

    public static IReadOnlyDictionary<string, OperationSpec> All { get; } = new Dictionary<string, OperationSpec>(StringComparer.Ordinal)
    {
        ["SubmitRun"] = new("Runs", "Submits a run (with ?wait=N, waits up to N seconds for its result)", new(Json, typeof(RunRequest)),
            [new(200, "The run has finished (waited)", Json, typeof(RunResult)), new(202, "Accepted; poll Location", Json, typeof(RunResult))],
            [.. Body, 409, 422, 429]),
        ["ListRuns"] = new("Runs", "The tenant's runs of a period, newest first (filters: status, provider, since, limit)", null,
            [new(200, "The runs")], [400, 401, 500]),
        ["GetRun"] = new("Runs", "The state or result of a run", null, [new(200, "The run", Json, typeof(RunResult))], Read),
        ["GetRunEvents"] = new("Runs", "A run's step changes, output chunks and result as Server-Sent Events (resumable with Last-Event-ID)", null,
            [new(200, "The events", "text/event-stream")], Read),
        ["CancelRun"] = new("Runs", "Cancels a run that has not finished", null, [new(202, "Cancelling")], [.. Read, 409]),
        ["RunSandbox"] = new("Runs", "The v1 SDK's synchronous run", new(Json, typeof(SandboxRunRequest)),
            [new(200, "The result", Json, typeof(SandboxResult)), new(202, "Still running; poll /v1/runs/{id}")], [.. Body, 409, 422, 429]),
        ["Health"] = new("Service", "Liveness (no credential)", null, [new(200, "Up")], [500]),
        ["GetUsage"] = new("Service", "Billed usage over a period (v2 and v1 SDK fields)", null, [new(200, "Usage")], [400, 401, 500]),
        ["GetProviders"] = new("Service", "What each provider offers this tenant, and its health", null, [new(200, "Providers")], [401, 500]),
        ["GetProvenance"] = new("Provenance", "The signed provenance bundle of a run", null, [new(200, "The bundle", Json, typeof(ProvenanceBundle))], Read),
        ["GetLogHead"] = new("Provenance", "The transparency log's signed tree head", null, [new(200, "The head", Json, typeof(SignedTreeHead))], [401, 500]),
        ["GetLogKey"] = new("Provenance", "The key that signs envelopes and tree heads", null, [new(200, "The key", Json, typeof(SigningKey))], [401, 500]),
        ["GetLogConsistency"] = new("Provenance", "Proof that the log of size `to` extends the log of size `from`", null,
            [new(200, "The proof", Json, typeof(ConsistencyProof))], [400, 401, 500]),
        ["GetRoutingReport"] = new("Service", "The last re-optimisation report of the router", null, [new(200, "The report")], Read),
        ["SubmitBatch"] = new("Batches", "Submits a batch: a JSON array or JSON Lines of run requests", new(Json, typeof(RunRequest[])),
            [new(202, "Queued; poll Location")], [.. Body, 409, 422, 429]),
        ["GetBatch"] = new("Batches", "A batch's progress and cost", null, [new(200, "The batch", Json, typeof(BatchView))], Read),
        ["CancelBatch"] = new("Batches", "Cancels a batch's unfinished runs", null, [new(202, "Cancelling")], [.. Read, 409]),
        ["GetBatchResults"] = new("Batches", "A batch's results, one JSON line per run", null, [new(200, "Results", "application/x-ndjson")], Read),
        ["CreateEdgeEnrollmentToken"] = new("Edge", "A token that enrolls edge agents (single-use unless maxUses says more)", new(Json, typeof(EdgeEnrollmentTokenRequest)),
            [new(201, "The token, shown once", Json, typeof(EdgeEnrollmentTokenResponse))], [.. Body, 409]),
        ["ListEdgeEnrollmentTokens"] = new("Edge", "The tenant's enrollment tokens with their state and uses (never the token)", null,
            [new(200, "The tokens, newest first", Json, typeof(EdgeEnrollmentTokenList))], [401, 500]),
        ["RevokeEdgeEnrollmentToken"] = new("Edge", "Revokes an enrollment token: it enrols nobody from now on", null,
            [new(204, "Revoked", null)], [400, 401, 404, 500]),
        ["EnrollEdgeAgent"] = new("Edge", "Enrolls an edge agent (Bearer: enrollment token)", new(Json, typeof(EdgeEnrollRequest)),
            [new(201, "The agent and its token", Json, typeof(EdgeEnrollResponse))], Body),
        ["RotateEdgeAgentToken"] = new("Edge", "Issues an edge agent a new token; its earlier tokens are refused from then on", null,
            [new(200, "The new token, shown once", Json, typeof(EdgeAgentTokenResponse))], [400, 401, 404, 500]),
        ["EdgeAgentHeartbeat"] = new("Edge", "An agent's heartbeat (Bearer: agent token)", new(Json, typeof(EdgeHeartbeat)),
            [new(200, "Acknowledged, with jobs to cancel and quarantines", Json, typeof(EdgeHeartbeatAck))], [.. Body, 404]),
        ["PollEdgeJobs"] = new("Edge", "Jobs for an agent (long poll)", null, [new(200, "Jobs", Json, typeof(EdgeJobBatch)), new(204, "No job", null)], Read),
        ["PostEdgeJobResult"] = new("Edge", "A job's result", new(Json, typeof(EdgeJobResult)),
            [new(200, "Recorded", Json, typeof(EdgeJobResultAck))], [.. Body, 403, 404, 409, 422]),
        ["ListEdgeAgents"] = new("Edge", "The tenant's enrolled edge agents, with their last heartbeat", null, [new(200, "The agents")], [401, 500]),
        ["ListBootKitImages"] = new("BootKit", "The bootable images the tenant's edge agents run, each with its agents",
            null, [new(200, "The images", Json, typeof(BootKitImageList))], [401, 500]),
        ["RevokeEdgeAgent"] = new("Edge", "Revokes an edge agent (its tokens stop working)", null, [new(204, "Revoked")], Read),
        ["Console"] = new("Console", "The web console's files (no credential; sign in on the page)", null, [new(200, "A file of the console", "text/html")], [404, 500]),
        ["PostEdgeTelemetry"] = new("Edge", "An agent's telemetry", new(Json, typeof(EdgeTelemetryBatch)),
            [new(202, "Accepted", Json, typeof(EdgeTelemetryAck))], [.. Body, 404]),
        ["CreateSandbox"] = new("Sandboxes", "Creates a kept sandbox placed by intent", new(Json, typeof(SandboxCreateRequest)),
            [new(201, "The sandbox", Json, typeof(SandboxInfo))], [.. Body, 422, 429]),
        ["ListSandboxes"] = new("Sandboxes", "The tenant's sandboxes (filter by metadata, paginated)", null, [new(200, "A page and the next page's token")], [400, 401, 500]),
        ["GetSandbox"] = new("Sandboxes", "A sandbox", null, [new(200, "The sandbox", Json, typeof(SandboxInfo))], Read),
        ["DeleteSandbox"] = new("Sandboxes", "Ends a sandbox now", null, [new(202, "Stopping")], [.. Read, 409]),
        ["SetSandboxTimeout"] = new("Sandboxes", "Sets a sandbox's lifetime from now", new(Json, typeof(SandboxTimeoutRequest)),
            [new(200, "The sandbox", Json, typeof(SandboxInfo))], [.. Body, 404, 410]),
        ["GetSandboxProvenance"] = new("Sandboxes", "The signed record of an ended sandbox's commands", null,
            [new(200, "The bundle", Json, typeof(ProvenanceBundle))], [.. Read, 409]),
        ["RunSandboxCommand"] = new("Sandbox commands", "Runs a command; its output streams as Server-Sent Events (or 202 with background)", new(Json, typeof(CommandRequest)),
            [new(200, "start, stdout, stderr and end events", "text/event-stream"), new(202, "Started in the background", Json, typeof(CommandInfo))],
            [.. Body, 404, 409, 410]),
        ["ListSandboxCommands"] = new("Sandbox commands", "A sandbox's commands", null, [new(200, "The commands")], Read),
        ["GetSandboxCommand"] = new("Sandbox commands", "A command", null, [new(200, "The command", Json, typeof(CommandInfo))], Read),
        ["KillSandboxCommand"] = new("Sandbox commands", "Kills a running command and its process group", null, [new(202, "Killing")], [.. Read, 409]),
        ["GetSandboxCommandEvents"] = new("Sandbox commands", "A command's events after Last-Event-ID (Server-Sent Events)", null,
            [new(200, "The events", "text/event-stream")], [400, 401, 404, 500]),
        ["SendSandboxCommandInput"] = new("Sandbox commands", "Sends stdin to a running command", new(Json, typeof(CommandInputRequest)),
            [new(204, "Sent", null)], [.. Body, 404, 409]),
        ["ListSandboxFiles"] = new("Sandbox files", "A directory's entries", null, [new(200, "The entries")], [400, 401, 403, 404, 410, 500]),
        ["RemoveSandboxFile"] = new("Sandbox files", "Removes a file or directory", null, [new(204, "Removed", null)], [400, 401, 403, 404, 410, 500]),
        ["StatSandboxFile"] = new("Sandbox files", "An entry's metadata", null, [new(200, "The entry")], [400, 401, 403, 404, 410, 500]),
        ["ReadSandboxFile"] = new("Sandbox files", "A file's bytes", null, [new(200, "The bytes", "application/octet-stream")], [400, 401, 403, 404, 410, 413, 500]),
        ["WriteSandboxFile"] = new("Sandbox files", "Writes a file (whole or not at all)", new("application/octet-stream"),
            [new(200, "The entry")], [400, 401, 403, 404, 410, 413, 500, 507]),
        ["MakeSandboxDirectory"] = new("Sandbox files", "Makes a directory and its parents", new(Json, typeof(FileOperationRequest)),
            [new(201, "The entry")], [.. Body, 403, 404, 409, 410]),
        ["MoveSandboxFile"] = new("Sandbox files", "Moves an entry", new(Json, typeof(FileOperationRequest)), [new(200, "The entry")], [.. Body, 403, 404, 410]),
        ["E2BCreateSandbox"] = E2B("Creates a sandbox (E2B's wire)", new(Json), 201),
        ["E2BCreateSandboxV2"] = E2B("Creates a sandbox (E2B's wire, v2)", new(Json), 201),
        ["E2BListSandboxes"] = E2B("Lists running sandboxes (E2B's wire)", null, 200),
        ["E2BListSandboxesV2"] = E2B("Lists sandboxes (E2B's wire, v2)", null, 200),
        ["E2BGetSandbox"] = E2B("A sandbox (E2B's wire)", null, 200),
        ["E2BKillSandbox"] = E2B("Kills a sandbox (E2B's wire)", null, 204),
        ["E2BSetSandboxTimeout"] = E2B("Sets a sandbox's timeout (E2B's wire)", new(Json), 204),
        ["E2BConnectSandbox"] = E2B("Connects to a sandbox (E2B's wire)", new(Json), 200),
        ["E2BPauseSandbox"] = E2B("Pause: not supported (E2B's wire)", null, 501),
        ["E2BResumeSandbox"] = E2B("Resume: not supported (E2B's wire)", null, 501),
        ["E2BSandboxMetrics"] = E2B("Metrics: not supported (E2B's wire)", null, 501),
        ["E2BHealth"] = E2B("envd health (E2B's wire)", null, 204),
        ["E2BReadFile"] = E2B("envd: downloads a file (E2B's wire)", null, 200, "application/octet-stream"),
        ["E2BWriteFiles"] = E2B("envd: uploads files (E2B's wire)", new("multipart/form-data"), 200),
        ["E2BProcess"] = E2B("envd's process service over Connect (E2B's wire)", new("application/connect+json"), 200, "application/connect+json"),
        ["E2BFilesystem"] = E2B("envd's filesystem service over Connect (E2B's wire)", new(Json), 200),
        ["SnapshotSandbox"] = NotSupported("Snapshots a sandbox: not supported yet"),
        ["RestoreSnapshot"] = NotSupported("Restores a snapshot: not supported yet"),
        ["ListSnapshots"] = NotSupported("Lists snapshots: not supported yet"),
        ["PostShieldAlerts"] = new("Shield", "Falco alerts for this tenant's runs and sandboxes", new(Json), [new(200, "Accepted alerts")], Body),
        ["GetShieldFindings"] = new("Shield", "Shield's findings over a period", null, [new(200, "The findings")], [400, 401, 500]),
        ["PutShieldRules"] = new("Shield", "Sets the tenant's Shield rules (YAML)", new("application/yaml"), [new(200, "The rules")], Body),
        ["GetShieldRules"] = new("Shield", "The tenant's Shield rules", null, [new(200, "The rules")], [401, 500]),
        ["GetComplianceReport"] = new("Compliance", "A signed compliance report over a period", null, [new(200, "The report")], [400, 401, 422, 500]),
    };

    /// <summary>The problem codes an error status can carry.</summary>
    public static IReadOnlyList<string> CodesOf(int status) => status switch
    {
        400 => [ErrorCodes.ValidationFailed, ErrorCodes.MalformedJson, ErrorCodes.PathOutside],
        401 => [ErrorCodes.Unauthorized, ErrorCodes.TokenExpired, ErrorCodes.TokenRevoked, ErrorCodes.TokenUsed],
        403 => [ErrorCodes.Forbidden],
        404 => [ErrorCodes.NotFound],
        409 => [ErrorCodes.Conflict, ErrorCodes.SandboxEnded, ErrorCodes.LeaseLost],
        410 => [ErrorCodes.SandboxEnded],
        413 => [ErrorCodes.PayloadTooLarge],
        415 => [ErrorCodes.UnsupportedMediaType],
        422 => [ErrorCodes.IsolationUnavailable, ErrorCodes.NotSupported, ErrorCodes.NoCandidate, ErrorCodes.IsolationBelowRequired],
        429 => [ErrorCodes.QuotaExceeded],
        501 => [ErrorCodes.NotSupported],
        507 => [ErrorCodes.NoSpace],
        _ => [ErrorCodes.Internal],
    };

    /// <summary>The reason phrase of a status.</summary>
    public static string Title(int status) => status switch
    {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload too large",
        415 => "Unsupported media type",
        422 => "Unprocessable request",
        429 => "Too many requests",
        501 => "Not implemented",
        507 => "Insufficient storage",
        _ => "Internal error",
    };

    private static OperationSpec E2B(string summary, BodySpec? request, int status, string mediaType = Json) =>
        new("E2B wire", summary, request, status is 204 or 501 ? [new(status, status == 501 ? "Not supported" : "Done", null)] : [new(status, "See docs/e2b.md", mediaType)],
            [400, 401, 404, 500], E2BWire: true);

    private static OperationSpec NotSupported(string summary) => new("Snapshots", summary, null, [], [401, 501]);
}
