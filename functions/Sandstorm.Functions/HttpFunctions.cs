using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Sandstorm.Api;
using Sandstorm.Api.Batches;
using Sandstorm.Api.BootKit;
using Sandstorm.Api.E2B;
using Sandstorm.Api.Edge;
using Sandstorm.Api.Sandboxes;

namespace Sandstorm.Functions;

/// <summary>HTTP shims: each calls the shared handler; names and routes match <see cref="ApiRoutes"/> (a test checks it).</summary>
public static class HttpFunctions
{
    [Function("SubmitRun")]
    public static async Task<IActionResult> SubmitRun(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/runs")] HttpRequest request,
        [DurableClient] DurableTaskClient client) =>
        new ResultActionResult(await RunEndpoints.SubmitRunAsync(request.HttpContext, client));

    [Function("ListRuns")]
    public static async Task<IActionResult> ListRuns(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/runs")] HttpRequest request) =>
        new ResultActionResult(await RunEndpoints.ListRunsAsync(request.HttpContext));

    [Function("Console")]
    public static async Task<IActionResult> Console(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "console/{*path}")] HttpRequest request,
        string? path) =>
        new ResultActionResult(await ConsoleAssets.GetAsync(request.HttpContext, path));

    [Function("GetRun")]
    public static async Task<IActionResult> GetRun(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/runs/{id}")] HttpRequest request,
        string id) =>
        new ResultActionResult(await RunEndpoints.GetRunAsync(request.HttpContext, id));

    [Function("CancelRun")]
    public static async Task<IActionResult> CancelRun(
        [HttpTrigger(AuthorizationLevel.Anonymous, "delete", Route = "v1/runs/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        new ResultActionResult(await RunEndpoints.CancelRunAsync(request.HttpContext, client, id));

    [Function("RunSandbox")]
    public static async Task<IActionResult> RunSandbox(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/sandboxes/run")] HttpRequest request,
        [DurableClient] DurableTaskClient client) =>
        new ResultActionResult(await RunEndpoints.RunSandboxAsync(request.HttpContext, client));

    [Function("Health")]
    public static IActionResult Health(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/health")] HttpRequest request) =>
        new ResultActionResult(RunEndpoints.Health());

    [Function("GetUsage")]
    public static async Task<IActionResult> GetUsage(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/usage")] HttpRequest request) =>
        new ResultActionResult(await RunEndpoints.GetUsageAsync(request.HttpContext));

    [Function("GetRoutingReport")]
    public static async Task<IActionResult> GetRoutingReport(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/routing/report")] HttpRequest request) =>
        new ResultActionResult(await RoutingEndpoints.GetReportAsync(request.HttpContext));

    [Function("GetProviders")]
    public static async Task<IActionResult> GetProviders(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/providers")] HttpRequest request) =>
        new ResultActionResult(await RunEndpoints.GetProvidersAsync(request.HttpContext));

    [Function("GetProvenance")]
    public static async Task<IActionResult> GetProvenance(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/runs/{id}/provenance")] HttpRequest request,
        string id) =>
        new ResultActionResult(await ProvenanceEndpoints.GetBundleAsync(request.HttpContext, id));

    [Function("GetLogHead")]
    public static async Task<IActionResult> GetLogHead(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/log/head")] HttpRequest request) =>
        new ResultActionResult(await ProvenanceEndpoints.GetHeadAsync(request.HttpContext));

    [Function("GetLogKey")]
    public static async Task<IActionResult> GetLogKey(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/log/key")] HttpRequest request) =>
        new ResultActionResult(await ProvenanceEndpoints.GetKeyAsync(request.HttpContext));

    [Function("GetLogConsistency")]
    public static async Task<IActionResult> GetLogConsistency(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/log/consistency")] HttpRequest request) =>
        new ResultActionResult(await ProvenanceEndpoints.GetConsistencyAsync(request.HttpContext));

    [Function("SubmitBatch")]
    public static async Task<IActionResult> SubmitBatch(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/batches")] HttpRequest request) =>
        new ResultActionResult(await BatchEndpoints.SubmitBatchAsync(request.HttpContext));

    [Function("GetBatch")]
    public static async Task<IActionResult> GetBatch(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/batches/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        new ResultActionResult(await BatchEndpoints.GetBatchAsync(request.HttpContext, client, id));

    [Function("CancelBatch")]
    public static async Task<IActionResult> CancelBatch(
        [HttpTrigger(AuthorizationLevel.Anonymous, "delete", Route = "v1/batches/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        new ResultActionResult(await BatchEndpoints.CancelBatchAsync(request.HttpContext, client, id));

    [Function("GetBatchResults")]
    public static async Task<IActionResult> GetBatchResults(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/batches/{id}/results")] HttpRequest request,
        string id) =>
        new ResultActionResult(await BatchEndpoints.GetBatchResultsAsync(request.HttpContext, id));

    [Function("CreateEdgeEnrollmentToken")]
    public static async Task<IActionResult> CreateEdgeEnrollmentToken(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/edge/enrollment-tokens")] HttpRequest request) =>
        new ResultActionResult(await EdgeEndpoints.CreateEnrollmentTokenAsync(request.HttpContext));

    [Function("ListEdgeEnrollmentTokens")]
    public static async Task<IActionResult> ListEdgeEnrollmentTokens(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/edge/enrollment-tokens")] HttpRequest request) =>
        new ResultActionResult(await EdgeEndpoints.ListEnrollmentTokensAsync(request.HttpContext));

    [Function("RevokeEdgeEnrollmentToken")]
    public static async Task<IActionResult> RevokeEdgeEnrollmentToken(
        [HttpTrigger(AuthorizationLevel.Anonymous, "delete", Route = "v1/edge/enrollment-tokens/{tokenId}")] HttpRequest request,
        string tokenId) =>
        new ResultActionResult(await EdgeEndpoints.RevokeEnrollmentTokenAsync(request.HttpContext, tokenId));

    [Function("RotateEdgeAgentToken")]
    public static async Task<IActionResult> RotateEdgeAgentToken(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/edge/agents/{agentId}/rotate")] HttpRequest request,
        string agentId) =>
        new ResultActionResult(await EdgeEndpoints.RotateAgentTokenAsync(request.HttpContext, agentId));

    [Function("EnrollEdgeAgent")]
    public static async Task<IActionResult> EnrollEdgeAgent(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/edge/agents")] HttpRequest request) =>
        new ResultActionResult(await EdgeEndpoints.EnrollAgentAsync(request.HttpContext));

    [Function("ListEdgeAgents")]
    public static async Task<IActionResult> ListEdgeAgents(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/edge/agents")] HttpRequest request) =>
        new ResultActionResult(await EdgeEndpoints.ListAgentsAsync(request.HttpContext));

    [Function("ListBootKitImages")]
    public static async Task<IActionResult> ListBootKitImages(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/bootkit/images")] HttpRequest request) =>
        new ResultActionResult(await BootKitEndpoints.ListImagesAsync(request.HttpContext));

    [Function("RevokeEdgeAgent")]
    public static async Task<IActionResult> RevokeEdgeAgent(
        [HttpTrigger(AuthorizationLevel.Anonymous, "delete", Route = "v1/edge/agents/{agentId}")] HttpRequest request,
        string agentId) =>
        new ResultActionResult(await EdgeEndpoints.RevokeAgentAsync(request.HttpContext, agentId));

    [Function("EdgeAgentHeartbeat")]
    public static async Task<IActionResult> EdgeAgentHeartbeat(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/edge/agents/{agentId}/heartbeat")] HttpRequest request,
        string agentId) =>
        new ResultActionResult(await EdgeEndpoints.HeartbeatAsync(request.HttpContext, agentId));

    [Function("PollEdgeJobs")]
    public static async Task<IActionResult> PollEdgeJobs(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/edge/agents/{agentId}/jobs")] HttpRequest request,
        string agentId) =>
        new ResultActionResult(await EdgeEndpoints.PollJobsAsync(request.HttpContext, agentId));

    [Function("PostEdgeJobResult")]
    public static async Task<IActionResult> PostEdgeJobResult(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/edge/agents/{agentId}/jobs/{jobId}/result")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string agentId,
        string jobId) =>
        new ResultActionResult(await EdgeEndpoints.PostJobResultAsync(request.HttpContext, client, agentId, jobId));

    [Function("PostEdgeTelemetry")]
    public static async Task<IActionResult> PostEdgeTelemetry(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/edge/agents/{agentId}/telemetry")] HttpRequest request,
        string agentId) =>
        new ResultActionResult(await EdgeEndpoints.PostTelemetryAsync(request.HttpContext, agentId));

    [Function("GetRunEvents")]
    public static async Task<IActionResult> GetRunEvents(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/runs/{id}/events")] HttpRequest request, string id) =>
        new ResultActionResult(await RunEndpoints.GetRunEventsAsync(request.HttpContext, id));

    [Function("CreateSandbox")]
    public static async Task<IActionResult> CreateSandbox(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/sandboxes")] HttpRequest request,
        [DurableClient] DurableTaskClient client) =>
        new ResultActionResult(await SandboxEndpoints.CreateAsync(request.HttpContext, client));

    [Function("ListSandboxes")]
    public static async Task<IActionResult> ListSandboxes(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/sandboxes")] HttpRequest request) =>
        new ResultActionResult(await SandboxEndpoints.ListAsync(request.HttpContext));

    [Function("GetSandbox")]
    public static async Task<IActionResult> GetSandbox(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/sandboxes/{id}")] HttpRequest request, string id) =>
        new ResultActionResult(await SandboxEndpoints.GetAsync(request.HttpContext, id));

    [Function("DeleteSandbox")]
    public static async Task<IActionResult> DeleteSandbox(
        [HttpTrigger(AuthorizationLevel.Anonymous, "delete", Route = "v1/sandboxes/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        new ResultActionResult(await SandboxEndpoints.DeleteAsync(request.HttpContext, client, id));

    [Function("SetSandboxTimeout")]
    public static async Task<IActionResult> SetSandboxTimeout(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/sandboxes/{id}/timeout")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        new ResultActionResult(await SandboxEndpoints.SetTimeoutAsync(request.HttpContext, client, id));

    [Function("GetSandboxProvenance")]
    public static async Task<IActionResult> GetSandboxProvenance(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/sandboxes/{id}/provenance")] HttpRequest request, string id) =>
        new ResultActionResult(await SandboxEndpoints.GetProvenanceAsync(request.HttpContext, id));

    [Function("RunSandboxCommand")]
    public static async Task<IActionResult> RunSandboxCommand(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/sandboxes/{id}/commands")] HttpRequest request, string id) =>
        new ResultActionResult(await SandboxEndpoints.RunCommandAsync(request.HttpContext, id));

    [Function("ListSandboxCommands")]
    public static async Task<IActionResult> ListSandboxCommands(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/sandboxes/{id}/commands")] HttpRequest request, string id) =>
        new ResultActionResult(await SandboxEndpoints.ListCommandsAsync(request.HttpContext, id));

    [Function("GetSandboxCommand")]
    public static async Task<IActionResult> GetSandboxCommand(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/sandboxes/{id}/commands/{commandId}")] HttpRequest request, string id, string commandId) =>
        new ResultActionResult(await SandboxEndpoints.GetCommandAsync(request.HttpContext, id, commandId));

    [Function("KillSandboxCommand")]
    public static async Task<IActionResult> KillSandboxCommand(
        [HttpTrigger(AuthorizationLevel.Anonymous, "delete", Route = "v1/sandboxes/{id}/commands/{commandId}")] HttpRequest request, string id, string commandId) =>
        new ResultActionResult(await SandboxEndpoints.KillCommandAsync(request.HttpContext, id, commandId));

    [Function("GetSandboxCommandEvents")]
    public static async Task<IActionResult> GetSandboxCommandEvents(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/sandboxes/{id}/commands/{commandId}/events")] HttpRequest request, string id, string commandId) =>
        new ResultActionResult(await SandboxEndpoints.CommandEventsAsync(request.HttpContext, id, commandId));

    [Function("SendSandboxCommandInput")]
    public static async Task<IActionResult> SendSandboxCommandInput(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/sandboxes/{id}/commands/{commandId}/stdin")] HttpRequest request, string id, string commandId) =>
        new ResultActionResult(await SandboxEndpoints.SendInputAsync(request.HttpContext, id, commandId));

    [Function("ListSandboxFiles")]
    public static async Task<IActionResult> ListSandboxFiles(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/sandboxes/{id}/files")] HttpRequest request, string id) =>
        new ResultActionResult(await SandboxEndpoints.ListFilesAsync(request.HttpContext, id));

    [Function("RemoveSandboxFile")]
    public static async Task<IActionResult> RemoveSandboxFile(
        [HttpTrigger(AuthorizationLevel.Anonymous, "delete", Route = "v1/sandboxes/{id}/files")] HttpRequest request, string id) =>
        new ResultActionResult(await SandboxEndpoints.RemoveFileAsync(request.HttpContext, id));

    [Function("StatSandboxFile")]
    public static async Task<IActionResult> StatSandboxFile(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/sandboxes/{id}/files/stat")] HttpRequest request, string id) =>
        new ResultActionResult(await SandboxEndpoints.StatFileAsync(request.HttpContext, id));

    [Function("ReadSandboxFile")]
    public static async Task<IActionResult> ReadSandboxFile(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/sandboxes/{id}/files/content")] HttpRequest request, string id) =>
        new ResultActionResult(await SandboxEndpoints.ReadFileAsync(request.HttpContext, id));

    [Function("WriteSandboxFile")]
    public static async Task<IActionResult> WriteSandboxFile(
        [HttpTrigger(AuthorizationLevel.Anonymous, "put", Route = "v1/sandboxes/{id}/files/content")] HttpRequest request, string id) =>
        new ResultActionResult(await SandboxEndpoints.WriteFileAsync(request.HttpContext, id));

    [Function("MakeSandboxDirectory")]
    public static async Task<IActionResult> MakeSandboxDirectory(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/sandboxes/{id}/files/mkdir")] HttpRequest request, string id) =>
        new ResultActionResult(await SandboxEndpoints.MakeDirectoryAsync(request.HttpContext, id));

    [Function("MoveSandboxFile")]
    public static async Task<IActionResult> MoveSandboxFile(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/sandboxes/{id}/files/move")] HttpRequest request, string id) =>
        new ResultActionResult(await SandboxEndpoints.MoveFileAsync(request.HttpContext, id));

    [Function("E2BCreateSandbox")]
    public static async Task<IActionResult> E2BCreateSandbox(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "sandboxes")] HttpRequest request,
        [DurableClient] DurableTaskClient client) =>
        new ResultActionResult(await E2BControlPlane.CreateAsync(request.HttpContext, client));

    [Function("E2BCreateSandboxV2")]
    public static async Task<IActionResult> E2BCreateSandboxV2(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v2/sandboxes")] HttpRequest request,
        [DurableClient] DurableTaskClient client) =>
        new ResultActionResult(await E2BControlPlane.CreateAsync(request.HttpContext, client));

    [Function("E2BListSandboxes")]
    public static async Task<IActionResult> E2BListSandboxes(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "sandboxes")] HttpRequest request) =>
        new ResultActionResult(await E2BControlPlane.ListAsync(request.HttpContext));

    [Function("E2BListSandboxesV2")]
    public static async Task<IActionResult> E2BListSandboxesV2(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v2/sandboxes")] HttpRequest request) =>
        new ResultActionResult(await E2BControlPlane.ListAsync(request.HttpContext));

    [Function("E2BGetSandbox")]
    public static async Task<IActionResult> E2BGetSandbox(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "sandboxes/{id}")] HttpRequest request, string id) =>
        new ResultActionResult(await E2BControlPlane.GetAsync(request.HttpContext, id));

    [Function("E2BKillSandbox")]
    public static async Task<IActionResult> E2BKillSandbox(
        [HttpTrigger(AuthorizationLevel.Anonymous, "delete", Route = "sandboxes/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        new ResultActionResult(await E2BControlPlane.KillAsync(request.HttpContext, client, id));

    [Function("E2BSetSandboxTimeout")]
    public static async Task<IActionResult> E2BSetSandboxTimeout(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "sandboxes/{id}/timeout")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        new ResultActionResult(await E2BControlPlane.SetTimeoutAsync(request.HttpContext, client, id));

    [Function("E2BConnectSandbox")]
    public static async Task<IActionResult> E2BConnectSandbox(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v2/sandboxes/{id}/connect")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id) =>
        new ResultActionResult(await E2BControlPlane.ConnectAsync(request.HttpContext, client, id));

    [Function("E2BPauseSandbox")]
    public static async Task<IActionResult> E2BPauseSandbox(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "sandboxes/{id}/pause")] HttpRequest request, string id) =>
        new ResultActionResult(await E2BControlPlane.NotSupportedAsync(request.HttpContext, id));

    [Function("E2BResumeSandbox")]
    public static async Task<IActionResult> E2BResumeSandbox(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "sandboxes/{id}/resume")] HttpRequest request, string id) =>
        new ResultActionResult(await E2BControlPlane.NotSupportedAsync(request.HttpContext, id));

    [Function("E2BSandboxMetrics")]
    public static async Task<IActionResult> E2BSandboxMetrics(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "sandboxes/{id}/metrics")] HttpRequest request, string id) =>
        new ResultActionResult(await E2BControlPlane.NotSupportedAsync(request.HttpContext, id));

    [Function("E2BHealth")]
    public static async Task<IActionResult> E2BHealth(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "health")] HttpRequest request) =>
        new ResultActionResult(await E2BEnvd.HealthAsync(request.HttpContext));

    [Function("E2BReadFile")]
    public static async Task<IActionResult> E2BReadFile(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "files")] HttpRequest request) =>
        new ResultActionResult(await E2BEnvd.ReadFileAsync(request.HttpContext));

    [Function("E2BWriteFiles")]
    public static async Task<IActionResult> E2BWriteFiles(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "files")] HttpRequest request) =>
        new ResultActionResult(await E2BEnvd.WriteFilesAsync(request.HttpContext));

    [Function("E2BProcess")]
    public static async Task<IActionResult> E2BProcess(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "process.Process/{method}")] HttpRequest request, string method)
    {
        await E2BEnvd.ProcessAsync(request.HttpContext, method);
        return new EmptyResult();
    }

    [Function("E2BFilesystem")]
    public static async Task<IActionResult> E2BFilesystem(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "filesystem.Filesystem/{method}")] HttpRequest request, string method)
    {
        await E2BEnvd.FilesystemAsync(request.HttpContext, method);
        return new EmptyResult();
    }

    [Function("SnapshotSandbox")]
    public static async Task<IActionResult> SnapshotSandbox(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/sandboxes/{id}/snapshot")] HttpRequest request) =>
        new ResultActionResult(await RunEndpoints.SnapshotsNotSupportedAsync(request.HttpContext));

    [Function("RestoreSnapshot")]
    public static async Task<IActionResult> RestoreSnapshot(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/snapshots/{id}/restore")] HttpRequest request) =>
        new ResultActionResult(await RunEndpoints.SnapshotsNotSupportedAsync(request.HttpContext));

    [Function("ListSnapshots")]
    public static async Task<IActionResult> ListSnapshots(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/snapshots")] HttpRequest request) =>
        new ResultActionResult(await RunEndpoints.SnapshotsNotSupportedAsync(request.HttpContext));

    /// <summary>Any method on any path no other function took: 404 or 405 as problem+json (see <see cref="ApiRoutes.UnmatchedFunction"/>).</summary>
    [Function(ApiRoutes.UnmatchedFunction)]
    public static IActionResult Unmatched(
        [HttpTrigger(AuthorizationLevel.Anonymous, Route = ApiRoutes.UnmatchedRoute)] HttpRequest request) =>
        new ResultActionResult(RouteProblems.Unmatched(request.HttpContext));
    [Function("PostShieldAlerts")]
    public static async Task<IActionResult> PostShieldAlerts(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "v1/shield/alerts")] HttpRequest request) =>
        new ResultActionResult(await ShieldEndpoints.PostAlertsAsync(request.HttpContext));

    [Function("GetShieldFindings")]
    public static async Task<IActionResult> GetShieldFindings(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/shield/findings")] HttpRequest request) =>
        new ResultActionResult(await ShieldEndpoints.GetFindingsAsync(request.HttpContext));

    [Function("PutShieldRules")]
    public static async Task<IActionResult> PutShieldRules(
        [HttpTrigger(AuthorizationLevel.Anonymous, "put", Route = "v1/shield/rules")] HttpRequest request) =>
        new ResultActionResult(await ShieldEndpoints.PutRulesAsync(request.HttpContext));

    [Function("GetShieldRules")]
    public static async Task<IActionResult> GetShieldRules(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/shield/rules")] HttpRequest request) =>
        new ResultActionResult(await ShieldEndpoints.GetRulesAsync(request.HttpContext));

    [Function("GetComplianceReport")]
    public static async Task<IActionResult> GetComplianceReport(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "v1/compliance/reports")] HttpRequest request) =>
        new ResultActionResult(await ComplianceEndpoints.GetReportAsync(request.HttpContext));
}
