using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Api.Batches;
using Sandstorm.Api.E2B;
using Sandstorm.Api.BootKit;
using Sandstorm.Api.Edge;
using Sandstorm.Api.Mcp;
using Sandstorm.Api.OpenApi;
using Sandstorm.Api.Sandboxes;

namespace Sandstorm.Api;

/// <summary>One route table for both hosts: the local host maps it; the Functions shims are checked against it by a test.</summary>
public static class ApiRoutes
{
    /// <summary>(function name, HTTP method, route) of every endpoint.</summary>
    public static IReadOnlyList<(string Function, string Method, string Route)> All { get; } =
    [
        ("SubmitRun", "POST", "v1/runs"),
        ("ListRuns", "GET", "v1/runs"),
        ("GetRun", "GET", "v1/runs/{id}"),
        ("CancelRun", "DELETE", "v1/runs/{id}"),
        ("RunSandbox", "POST", "v1/sandboxes/run"),
        ("Health", "GET", "v1/health"),
        ("GetUsage", "GET", "v1/usage"),
        ("GetProviders", "GET", "v1/providers"),
        ("GetProvenance", "GET", "v1/runs/{id}/provenance"),
        ("GetLogHead", "GET", "v1/log/head"),
        ("GetLogKey", "GET", "v1/log/key"),
        ("GetLogConsistency", "GET", "v1/log/consistency"),
        ("GetRoutingReport", "GET", "v1/routing/report"),
        ("SubmitBatch", "POST", "v1/batches"),
        ("GetBatch", "GET", "v1/batches/{id}"),
        ("CancelBatch", "DELETE", "v1/batches/{id}"),
        ("GetBatchResults", "GET", "v1/batches/{id}/results"),
        ("CreateEdgeEnrollmentToken", "POST", "v1/edge/enrollment-tokens"),
        ("ListEdgeEnrollmentTokens", "GET", "v1/edge/enrollment-tokens"),
        ("RevokeEdgeEnrollmentToken", "DELETE", "v1/edge/enrollment-tokens/{tokenId}"),
        ("EnrollEdgeAgent", "POST", "v1/edge/agents"),
        ("ListEdgeAgents", "GET", "v1/edge/agents"),
        ("ListBootKitImages", "GET", "v1/bootkit/images"),
        ("RevokeEdgeAgent", "DELETE", "v1/edge/agents/{agentId}"),
        ("RotateEdgeAgentToken", "POST", "v1/edge/agents/{agentId}/rotate"),
        ("EdgeAgentHeartbeat", "POST", "v1/edge/agents/{agentId}/heartbeat"),
        ("PollEdgeJobs", "GET", "v1/edge/agents/{agentId}/jobs"),
        ("PostEdgeJobResult", "POST", "v1/edge/agents/{agentId}/jobs/{jobId}/result"),
        ("PostEdgeTelemetry", "POST", "v1/edge/agents/{agentId}/telemetry"),
        ("GetRunEvents", "GET", "v1/runs/{id}/events"),
        ("CreateSandbox", "POST", "v1/sandboxes"),
        ("ListSandboxes", "GET", "v1/sandboxes"),
        ("GetSandbox", "GET", "v1/sandboxes/{id}"),
        ("DeleteSandbox", "DELETE", "v1/sandboxes/{id}"),
        ("SetSandboxTimeout", "POST", "v1/sandboxes/{id}/timeout"),
        ("GetSandboxProvenance", "GET", "v1/sandboxes/{id}/provenance"),
        ("RunSandboxCommand", "POST", "v1/sandboxes/{id}/commands"),
        ("ListSandboxCommands", "GET", "v1/sandboxes/{id}/commands"),
        ("GetSandboxCommand", "GET", "v1/sandboxes/{id}/commands/{commandId}"),
        ("KillSandboxCommand", "DELETE", "v1/sandboxes/{id}/commands/{commandId}"),
        ("GetSandboxCommandEvents", "GET", "v1/sandboxes/{id}/commands/{commandId}/events"),
        ("SendSandboxCommandInput", "POST", "v1/sandboxes/{id}/commands/{commandId}/stdin"),
        ("ListSandboxFiles", "GET", "v1/sandboxes/{id}/files"),
        ("RemoveSandboxFile", "DELETE", "v1/sandboxes/{id}/files"),
        ("StatSandboxFile", "GET", "v1/sandboxes/{id}/files/stat"),
        ("ReadSandboxFile", "GET", "v1/sandboxes/{id}/files/content"),
        ("WriteSandboxFile", "PUT", "v1/sandboxes/{id}/files/content"),
        ("MakeSandboxDirectory", "POST", "v1/sandboxes/{id}/files/mkdir"),
        ("MoveSandboxFile", "POST", "v1/sandboxes/{id}/files/move"),

        // E2B's wire (docs/e2b.md): the control plane the official SDK calls, and envd for every sandbox.
        ("E2BCreateSandbox", "POST", "sandboxes"),
        ("E2BCreateSandboxV2", "POST", "v2/sandboxes"),
        ("E2BListSandboxes", "GET", "sandboxes"),
        ("E2BListSandboxesV2", "GET", "v2/sandboxes"),
        ("E2BGetSandbox", "GET", "sandboxes/{id}"),
        ("E2BKillSandbox", "DELETE", "sandboxes/{id}"),
        ("E2BSetSandboxTimeout", "POST", "sandboxes/{id}/timeout"),
        ("E2BConnectSandbox", "POST", "v2/sandboxes/{id}/connect"),
        ("E2BPauseSandbox", "POST", "sandboxes/{id}/pause"),
        ("E2BResumeSandbox", "POST", "sandboxes/{id}/resume"),
        ("E2BSandboxMetrics", "GET", "sandboxes/{id}/metrics"),
        ("E2BHealth", "GET", "health"),
        ("E2BReadFile", "GET", "files"),
        ("E2BWriteFiles", "POST", "files"),
        ("E2BProcess", "POST", "process.Process/{method}"),
        ("E2BFilesystem", "POST", "filesystem.Filesystem/{method}"),
        ("SnapshotSandbox", "POST", "v1/sandboxes/{id}/snapshot"),
        ("RestoreSnapshot", "POST", "v1/snapshots/{id}/restore"),
        ("ListSnapshots", "GET", "v1/snapshots"),
        ("PostShieldAlerts", "POST", "v1/shield/alerts"),
        ("GetShieldFindings", "GET", "v1/shield/findings"),
        ("PutShieldRules", "PUT", "v1/shield/rules"),
        ("GetShieldRules", "GET", "v1/shield/rules"),
        ("GetComplianceReport", "GET", "v1/compliance/reports"),
        ("Console", "GET", "console/{*path}"),
    ];

    /// <summary>
    /// Name of the Functions app's catch-all (every method, any path the route table does not hold) that answers 404/405 as
    /// problem+json; the Functions host orders routes by function name, so its name sorts after every other function's.
    /// It never takes the host's own <c>admin/</c> and <c>runtime/</c> paths. The local host needs none: its routing
    /// answers those statuses itself (<see cref="RouteProblems.UseStatusProblems"/>).
    /// </summary>
    public const string UnmatchedFunction = "ZzUnmatchedRoute";

    /// <summary>Route of <see cref="UnmatchedFunction"/>: any path but the Functions host's own.</summary>
    public const string UnmatchedRoute = "{*path:regex(^(?!admin/|runtime/).*$)}";

    /// <summary>Maps the public API onto a minimal-API host.</summary>
    public static IEndpointRouteBuilder MapSandstormApi(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/runs", (HttpContext h, DurableTaskClient c) => RunEndpoints.SubmitRunAsync(h, c)).WithName("SubmitRun");
        app.MapGet("/v1/runs", (Delegate)((HttpContext h) => RunEndpoints.ListRunsAsync(h))).WithName("ListRuns");
        app.MapGet("/v1/runs/{id}", (HttpContext h, string id) => RunEndpoints.GetRunAsync(h, id)).WithName("GetRun");
        app.MapDelete("/v1/runs/{id}", (HttpContext h, DurableTaskClient c, string id) => RunEndpoints.CancelRunAsync(h, c, id)).WithName("CancelRun");
        app.MapPost("/v1/sandboxes/run", (HttpContext h, DurableTaskClient c) => RunEndpoints.RunSandboxAsync(h, c)).WithName("RunSandbox");
        app.MapGet("/v1/health", RunEndpoints.Health).WithName("Health");
        app.MapGet("/v1/usage", (Delegate)((HttpContext h) => RunEndpoints.GetUsageAsync(h))).WithName("GetUsage");
        app.MapGet("/v1/providers", (Delegate)((HttpContext h) => RunEndpoints.GetProvidersAsync(h))).WithName("GetProviders");
        app.MapGet("/v1/runs/{id}/provenance", (HttpContext h, string id) => ProvenanceEndpoints.GetBundleAsync(h, id)).WithName("GetProvenance");
        app.MapGet("/v1/log/head", (Delegate)((HttpContext h) => ProvenanceEndpoints.GetHeadAsync(h))).WithName("GetLogHead");
        app.MapGet("/v1/log/key", (Delegate)((HttpContext h) => ProvenanceEndpoints.GetKeyAsync(h))).WithName("GetLogKey");
        app.MapGet("/v1/log/consistency", (Delegate)((HttpContext h) => ProvenanceEndpoints.GetConsistencyAsync(h))).WithName("GetLogConsistency");
        app.MapGet("/v1/routing/report", (Delegate)((HttpContext h) => RoutingEndpoints.GetReportAsync(h))).WithName("GetRoutingReport");
        app.MapPost("/v1/batches", (Delegate)((HttpContext h) => BatchEndpoints.SubmitBatchAsync(h))).WithName("SubmitBatch");
        app.MapGet("/v1/batches/{id}", (HttpContext h, DurableTaskClient c, string id) => BatchEndpoints.GetBatchAsync(h, c, id)).WithName("GetBatch");
        app.MapDelete("/v1/batches/{id}", (HttpContext h, DurableTaskClient c, string id) => BatchEndpoints.CancelBatchAsync(h, c, id)).WithName("CancelBatch");
        app.MapGet("/v1/batches/{id}/results", (HttpContext h, string id) => BatchEndpoints.GetBatchResultsAsync(h, id)).WithName("GetBatchResults");
        app.MapPost("/v1/edge/enrollment-tokens", (Delegate)((HttpContext h) => EdgeEndpoints.CreateEnrollmentTokenAsync(h))).WithName("CreateEdgeEnrollmentToken");
        app.MapGet("/v1/edge/enrollment-tokens", (Delegate)((HttpContext h) => EdgeEndpoints.ListEnrollmentTokensAsync(h))).WithName("ListEdgeEnrollmentTokens");
        app.MapDelete("/v1/edge/enrollment-tokens/{tokenId}", (HttpContext h, string tokenId) => EdgeEndpoints.RevokeEnrollmentTokenAsync(h, tokenId)).WithName("RevokeEdgeEnrollmentToken");
        app.MapPost("/v1/edge/agents", (Delegate)((HttpContext h) => EdgeEndpoints.EnrollAgentAsync(h))).WithName("EnrollEdgeAgent");
        app.MapGet("/v1/edge/agents", (Delegate)((HttpContext h) => EdgeEndpoints.ListAgentsAsync(h))).WithName("ListEdgeAgents");
        app.MapGet("/v1/bootkit/images", (Delegate)((HttpContext h) => BootKitEndpoints.ListImagesAsync(h))).WithName("ListBootKitImages");
        app.MapDelete("/v1/edge/agents/{agentId}", (HttpContext h, string agentId) => EdgeEndpoints.RevokeAgentAsync(h, agentId)).WithName("RevokeEdgeAgent");
        app.MapPost("/v1/edge/agents/{agentId}/rotate", (HttpContext h, string agentId) => EdgeEndpoints.RotateAgentTokenAsync(h, agentId)).WithName("RotateEdgeAgentToken");
        app.MapPost("/v1/edge/agents/{agentId}/heartbeat", (HttpContext h, string agentId) => EdgeEndpoints.HeartbeatAsync(h, agentId)).WithName("EdgeAgentHeartbeat");
        app.MapGet("/v1/edge/agents/{agentId}/jobs", (HttpContext h, string agentId) => EdgeEndpoints.PollJobsAsync(h, agentId)).WithName("PollEdgeJobs");
        app.MapPost(
            "/v1/edge/agents/{agentId}/jobs/{jobId}/result",
            (HttpContext h, DurableTaskClient c, string agentId, string jobId) => EdgeEndpoints.PostJobResultAsync(h, c, agentId, jobId)).WithName("PostEdgeJobResult");
        app.MapPost("/v1/edge/agents/{agentId}/telemetry", (HttpContext h, string agentId) => EdgeEndpoints.PostTelemetryAsync(h, agentId)).WithName("PostEdgeTelemetry");
        app.MapGet("/v1/runs/{id}/events", (HttpContext h, string id) => RunEndpoints.GetRunEventsAsync(h, id)).WithName("GetRunEvents");
        app.MapPost("/v1/sandboxes", (HttpContext h, DurableTaskClient c) => SandboxEndpoints.CreateAsync(h, c)).WithName("CreateSandbox");
        app.MapGet("/v1/sandboxes", (Delegate)((HttpContext h) => SandboxEndpoints.ListAsync(h))).WithName("ListSandboxes");
        app.MapGet("/v1/sandboxes/{id}", (HttpContext h, string id) => SandboxEndpoints.GetAsync(h, id)).WithName("GetSandbox");
        app.MapDelete("/v1/sandboxes/{id}", (HttpContext h, DurableTaskClient c, string id) => SandboxEndpoints.DeleteAsync(h, c, id)).WithName("DeleteSandbox");
        app.MapPost("/v1/sandboxes/{id}/timeout", (HttpContext h, DurableTaskClient c, string id) => SandboxEndpoints.SetTimeoutAsync(h, c, id)).WithName("SetSandboxTimeout");
        app.MapGet("/v1/sandboxes/{id}/provenance", (HttpContext h, string id) => SandboxEndpoints.GetProvenanceAsync(h, id)).WithName("GetSandboxProvenance");
        app.MapPost("/v1/sandboxes/{id}/commands", (HttpContext h, string id) => SandboxEndpoints.RunCommandAsync(h, id)).WithName("RunSandboxCommand");
        app.MapGet("/v1/sandboxes/{id}/commands", (HttpContext h, string id) => SandboxEndpoints.ListCommandsAsync(h, id)).WithName("ListSandboxCommands");
        app.MapGet("/v1/sandboxes/{id}/commands/{commandId}", (HttpContext h, string id, string commandId) => SandboxEndpoints.GetCommandAsync(h, id, commandId)).WithName("GetSandboxCommand");
        app.MapDelete("/v1/sandboxes/{id}/commands/{commandId}", (HttpContext h, string id, string commandId) => SandboxEndpoints.KillCommandAsync(h, id, commandId)).WithName("KillSandboxCommand");
        app.MapGet("/v1/sandboxes/{id}/commands/{commandId}/events", (HttpContext h, string id, string commandId) => SandboxEndpoints.CommandEventsAsync(h, id, commandId)).WithName("GetSandboxCommandEvents");
        app.MapPost("/v1/sandboxes/{id}/commands/{commandId}/stdin", (HttpContext h, string id, string commandId) => SandboxEndpoints.SendInputAsync(h, id, commandId)).WithName("SendSandboxCommandInput");
        app.MapGet("/v1/sandboxes/{id}/files", (HttpContext h, string id) => SandboxEndpoints.ListFilesAsync(h, id)).WithName("ListSandboxFiles");
        app.MapDelete("/v1/sandboxes/{id}/files", (HttpContext h, string id) => SandboxEndpoints.RemoveFileAsync(h, id)).WithName("RemoveSandboxFile");
        app.MapGet("/v1/sandboxes/{id}/files/stat", (HttpContext h, string id) => SandboxEndpoints.StatFileAsync(h, id)).WithName("StatSandboxFile");
        app.MapGet("/v1/sandboxes/{id}/files/content", (HttpContext h, string id) => SandboxEndpoints.ReadFileAsync(h, id)).WithName("ReadSandboxFile");
        app.MapPut("/v1/sandboxes/{id}/files/content", (HttpContext h, string id) => SandboxEndpoints.WriteFileAsync(h, id)).WithName("WriteSandboxFile");
        app.MapPost("/v1/sandboxes/{id}/files/mkdir", (HttpContext h, string id) => SandboxEndpoints.MakeDirectoryAsync(h, id)).WithName("MakeSandboxDirectory");
        app.MapPost("/v1/sandboxes/{id}/files/move", (HttpContext h, string id) => SandboxEndpoints.MoveFileAsync(h, id)).WithName("MoveSandboxFile");
        app.MapPost("/sandboxes", (HttpContext h, DurableTaskClient c) => E2BControlPlane.CreateAsync(h, c)).WithName("E2BCreateSandbox");
        app.MapPost("/v2/sandboxes", (HttpContext h, DurableTaskClient c) => E2BControlPlane.CreateAsync(h, c)).WithName("E2BCreateSandboxV2");
        app.MapGet("/sandboxes", (Delegate)((HttpContext h) => E2BControlPlane.ListAsync(h))).WithName("E2BListSandboxes");
        app.MapGet("/v2/sandboxes", (Delegate)((HttpContext h) => E2BControlPlane.ListAsync(h))).WithName("E2BListSandboxesV2");
        app.MapGet("/sandboxes/{id}", (HttpContext h, string id) => E2BControlPlane.GetAsync(h, id)).WithName("E2BGetSandbox");
        app.MapDelete("/sandboxes/{id}", (HttpContext h, DurableTaskClient c, string id) => E2BControlPlane.KillAsync(h, c, id)).WithName("E2BKillSandbox");
        app.MapPost("/sandboxes/{id}/timeout", (HttpContext h, DurableTaskClient c, string id) => E2BControlPlane.SetTimeoutAsync(h, c, id)).WithName("E2BSetSandboxTimeout");
        app.MapPost("/v2/sandboxes/{id}/connect", (HttpContext h, DurableTaskClient c, string id) => E2BControlPlane.ConnectAsync(h, c, id)).WithName("E2BConnectSandbox");
        app.MapPost("/sandboxes/{id}/pause", (HttpContext h, string id) => E2BControlPlane.NotSupportedAsync(h, id)).WithName("E2BPauseSandbox");
        app.MapPost("/sandboxes/{id}/resume", (HttpContext h, string id) => E2BControlPlane.NotSupportedAsync(h, id)).WithName("E2BResumeSandbox");
        app.MapGet("/sandboxes/{id}/metrics", (HttpContext h, string id) => E2BControlPlane.NotSupportedAsync(h, id)).WithName("E2BSandboxMetrics");
        app.MapGet("/health", (Delegate)((HttpContext h) => E2BEnvd.HealthAsync(h))).WithName("E2BHealth");
        app.MapGet("/files", (Delegate)((HttpContext h) => E2BEnvd.ReadFileAsync(h))).WithName("E2BReadFile");
        app.MapPost("/files", (Delegate)((HttpContext h) => E2BEnvd.WriteFilesAsync(h))).WithName("E2BWriteFiles");
        app.MapPost("/process.Process/{method}", (HttpContext h, string method) => E2BEnvd.ProcessAsync(h, method)).WithName("E2BProcess");
        app.MapPost("/filesystem.Filesystem/{method}", (HttpContext h, string method) => E2BEnvd.FilesystemAsync(h, method)).WithName("E2BFilesystem");
        app.MapPost("/v1/sandboxes/{id}/snapshot", (Delegate)((HttpContext h) => RunEndpoints.SnapshotsNotSupportedAsync(h))).WithName("SnapshotSandbox");
        app.MapPost("/v1/snapshots/{id}/restore", (Delegate)((HttpContext h) => RunEndpoints.SnapshotsNotSupportedAsync(h))).WithName("RestoreSnapshot");
        app.MapGet("/v1/snapshots", (Delegate)((HttpContext h) => RunEndpoints.SnapshotsNotSupportedAsync(h))).WithName("ListSnapshots");
        app.MapPost("/v1/shield/alerts", (Delegate)((HttpContext h) => ShieldEndpoints.PostAlertsAsync(h))).WithName("PostShieldAlerts");
        app.MapGet("/v1/shield/findings", (Delegate)((HttpContext h) => ShieldEndpoints.GetFindingsAsync(h))).WithName("GetShieldFindings");
        app.MapPut("/v1/shield/rules", (Delegate)((HttpContext h) => ShieldEndpoints.PutRulesAsync(h))).WithName("PutShieldRules");
        app.MapGet("/v1/shield/rules", (Delegate)((HttpContext h) => ShieldEndpoints.GetRulesAsync(h))).WithName("GetShieldRules");
        app.MapGet("/v1/compliance/reports", (Delegate)((HttpContext h) => ComplianceEndpoints.GetReportAsync(h))).WithName("GetComplianceReport");
        app.MapGet("/console/{*path}", (HttpContext h, string? path) => ConsoleAssets.GetAsync(h, path)).WithName("Console");
        EnsureParity(app);
        if (app.ServiceProvider.GetService<HostProfile>() is { RoutesEndpoints: true })
        {
            app.MapSandstormMcp();
            app.MapSandstormApiDocument();
        }

        return app;
    }

    /// <summary>Fails start-up when the mapped endpoints drift from <see cref="All"/> (which the Functions shims are checked against).</summary>
    private static void EnsureParity(IEndpointRouteBuilder app)
    {
        var mapped = app.DataSources
            .SelectMany(d => d.Endpoints)
            .OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<IEndpointNameMetadata>() is not null && e.Metadata.GetMetadata<HttpMethodMetadata>() is not null)
            .Select(e => (
                Function: e.Metadata.GetMetadata<IEndpointNameMetadata>()!.EndpointName,
                Method: e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods[0],
                Route: e.RoutePattern.RawText!.TrimStart('/')))
            .ToHashSet();
        var missing = All.Where(r => !mapped.Contains(r)).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException($"routes not mapped as declared: {string.Join(", ", missing)}");
        }
    }
}
