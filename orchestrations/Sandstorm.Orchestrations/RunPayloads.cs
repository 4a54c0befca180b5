using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;
using Sandstorm.Storage;

namespace Sandstorm.Orchestrations;

/// <summary>Loads and stores the large parts of a run (request, outputs) through the <see cref="PayloadStore"/>.</summary>
public sealed class RunPayloads(PayloadStore payloads)
{
    public static string BlobName(string tenantId, string runId, string part) => $"{tenantId}/{runId}/{part}";

    /// <summary>Stores a request: inline when small, else as a blob.</summary>
    public Task<Payload> PutRequestAsync(string tenantId, string runId, RunRequest request, CancellationToken cancellationToken) =>
        payloads.PutAsync(BlobName(tenantId, runId, "request.json"), JsonSerializer.Serialize(request, SandstormJson.Options), cancellationToken);

    public async Task<RunRequest> GetRequestAsync(string runId, Payload request, CancellationToken cancellationToken)
    {
        var json = await payloads.GetAsync(request, cancellationToken);
        return JsonSerializer.Deserialize<RunRequest>(json, SandstormJson.Options)
            ?? throw new InvalidOperationException($"run {runId} has an empty request");
    }

    /// <summary>Turns an execution result into a summary whose outputs travel by reference.</summary>
    public async Task<ExecutionSummary> SummarizeAsync(string tenantId, string runId, ExecutionResult result, CancellationToken cancellationToken) => new()
    {
        Runtime = result.Runtime,
        Stdout = await payloads.PutAsync(BlobName(tenantId, runId, "stdout"), result.Stdout, cancellationToken),
        Stderr = await payloads.PutAsync(BlobName(tenantId, runId, "stderr"), result.Stderr, cancellationToken),
        StdoutTruncated = result.StdoutTruncated,
        StderrTruncated = result.StderrTruncated,
        ExitCode = result.ExitCode,
        WallTimeMs = result.WallTimeMs,
        CpuTimeMs = result.CpuTimeMs,
        PeakMemoryBytes = result.PeakMemoryBytes,
        OomKilled = result.OomKilled,
        TimedOut = result.TimedOut,
        ExecutionId = result.ExecutionId,
        Shield = result.Shield,
        Isolation = result.Isolation,
    };

    public Task<string> GetTextAsync(Payload payload, CancellationToken cancellationToken) => payloads.GetAsync(payload, cancellationToken);

    /// <summary>The execution spec of a request (who it is for, and Shield's monitoring, are the caller's to add).</summary>
    public static ExecutionSpec SpecOf(RunRequest request) => new()
    {
        Language = request.Language,
        Code = request.Code,
        Files = request.Files,
        // A code that names one of the files (validated at submission) runs that file.
        EntryPoint = Languages.EntryPoint(request.Code, request.Files),
        Environment = request.Environment,
        Cpu = request.Cpu,
        MemoryMiB = request.Memory,
        Timeout = TimeSpan.FromMilliseconds(request.Timeout),
        IsolationLevel = request.IsolationLevel,
    };
}
