using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Sandstorm.Core;
using Sandstorm.Core.Errors;
using Sandstorm.Core.Validation;
using Sandstorm.Orchestrations.Batches;
using Sandstorm.Storage;

namespace Sandstorm.Api.Batches;

/// <summary>
/// Takes one batch-queue message, from whichever queue: validates all of it before starting anything, then starts the
/// batch orchestration (instance id = batch id) or the single run. A redelivered message finds its instance or run and
/// starts nothing again. Bad messages come back as <see cref="IntakeResult.Poison"/>; transient failures throw, so the
/// queue redelivers.
/// </summary>
public sealed partial class BatchIntake(
    BatchStore batches,
    PayloadStore payloads,
    RunService runs,
    IOptions<BatchOptions> options,
    TimeProvider time,
    ILogger<BatchIntake> logger)
{
    public async Task<IntakeResult> HandleAsync(DurableTaskClient client, string body, string messageId, CancellationToken cancellationToken)
    {
        BatchMessage? message;
        try
        {
            message = JsonSerializer.Deserialize<BatchMessage>(body, SandstormJson.Strict);
        }
        catch (JsonException e)
        {
            return IntakeResult.Poison($"malformed message: {e.Message}");
        }

        if (message?.TenantId is not { } tenant || !SafeId().IsMatch(tenant))
        {
            return IntakeResult.Poison("malformed message: tenantId is required (letters, digits, '_', '-', at most 64)");
        }

        try
        {
            NullElements.Reject(message);
            return (message.Manifest, message.Request) switch
            {
                (null, { } request) => await StartRunAsync(client, tenant, request, message.IdempotencyKey ?? "queue:" + messageId, cancellationToken),
                ({ } manifest, null) => await StartBatchAsync(client, tenant, message.BatchId, manifest, cancellationToken),
                _ => IntakeResult.Poison("malformed message: give either manifest (with batchId) or request"),
            };
        }
        catch (SandstormException e) when (e.Status is >= 400 and < 500)
        {
            var fields = e.Errors is null ? "" : " (" + string.Join("; ", e.Errors.Select(f => $"{f.Key}: {string.Join(", ", f.Value)}")) + ")";
            return IntakeResult.Poison($"{e.Code}: {e.Message}{fields}");
        }
    }

    /// <summary>Starts a validated batch whose row and canonical manifest exist (the API's path, and the queue's after checks).</summary>
    public async Task<bool> StartAsync(DurableTaskClient client, BatchRecord batch, CancellationToken cancellationToken)
    {
        if (await client.GetInstanceAsync(batch.BatchId, cancellationToken) is not null)
        {
            return false;
        }

        var settings = options.Value;
        var input = new BatchInput
        {
            TenantId = batch.TenantId,
            BatchId = batch.BatchId,
            Manifest = batch.Manifest,
            Total = batch.Total,
            MaxConcurrency = settings.EffectiveConcurrency,
            ChunkSize = settings.EffectiveChunkSize,
        };
        await client.ScheduleNewOrchestrationInstanceAsync(nameof(BatchOrchestrator), input, new StartOrchestrationOptions(batch.BatchId), cancellationToken);
        return true;
    }

    /// <summary>SHA-256 of a canonical manifest.</summary>
    public static string Hash(string canonicalManifest) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalManifest)));

    /// <summary>Batch ids: letters, digits, '_' and '-', at most 64 (they prefix child run ids).</summary>
    public static bool IsValidBatchId(string? id) => id is not null && SafeId().IsMatch(id);

    private async Task<IntakeResult> StartRunAsync(DurableTaskClient client, string tenant, Core.Contracts.RunRequest request, string key, CancellationToken cancellationToken)
    {
        var (runId, created) = await runs.SubmitAsync(client, tenant, request, key, cancellationToken, rateLimited: false);
        return IntakeResult.Ok(created ? $"run {runId} started" : $"run {runId} already started");
    }

    private async Task<IntakeResult> StartBatchAsync(DurableTaskClient client, string tenant, string? batchId, string manifest, CancellationToken cancellationToken)
    {
        if (!IsValidBatchId(batchId))
        {
            return IntakeResult.Poison("malformed message: batchId is required (letters, digits, '_', '-', at most 64)");
        }

        if (!manifest.StartsWith(tenant + "/", StringComparison.Ordinal) || manifest.Contains("..", StringComparison.Ordinal))
        {
            return IntakeResult.Poison($"manifest must be a blob under '{tenant}/' in the payloads container");
        }

        var content = await payloads.GetBlobAsync(manifest, cancellationToken);
        if (content is null)
        {
            return IntakeResult.Poison($"manifest '{manifest}' was not found");
        }

        var text = content.ToString();
        var requests = BatchManifest.Parse(text, jsonLines: !text.TrimStart().StartsWith('['), options.Value.EffectiveMaxItems);
        await runs.RequireConsentAsync(tenant, requests, cancellationToken);
        await runs.RequireOfferedAsync(tenant, requests, cancellationToken);
        var canonical = BatchManifest.ToJsonLines(requests);
        var hash = Hash(canonical);

        var batch = await batches.GetAsync(tenant, batchId!, cancellationToken);
        if (batch is null)
        {
            if (await client.GetInstanceAsync(batchId!, cancellationToken) is not null)
            {
                return IntakeResult.Poison($"batch id '{batchId}' is already in use");
            }

            // The orchestration reads the canonical manifest, one request per line, whatever shape the producer wrote.
            var stored = BatchEvents.ManifestBlob(tenant, batchId!);
            if (stored != manifest || text != canonical)
            {
                await payloads.PutBlobAsync(stored, BinaryData.FromString(canonical), cancellationToken);
            }

            batch = new BatchRecord
            {
                TenantId = tenant,
                BatchId = batchId!,
                Status = BatchStatus.Queued,
                Total = requests.Count,
                Manifest = stored,
                CreatedAt = time.GetUtcNow(),
                RequestHash = hash,
            };
            if (!await batches.TryCreateAsync(batch, cancellationToken))
            {
                batch = await batches.GetAsync(tenant, batchId!, cancellationToken) ?? batch;
            }
        }

        if (batch.RequestHash != hash)
        {
            return IntakeResult.Poison($"batch id '{batchId}' was already used with a different manifest");
        }

        var started = await StartAsync(client, batch, cancellationToken);
        logger.LogInformation("Batch {BatchId} of {TenantId}: {Count} runs, {State}", batchId, tenant, batch.Total, started ? "started" : "already started");
        return IntakeResult.Ok(started ? $"batch {batchId} started" : $"batch {batchId} already started");
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,64}$")]
    private static partial Regex SafeId();
}
