using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Sandstorm.Core;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Reoptimization;

namespace Sandstorm.Routing.Storage;

/// <summary>
/// Models in Blob storage (container <c>models</c>): <c>routing/{version}.model</c> holds both heads and the metadata,
/// <c>routing/{version}.json</c> the metadata alone (readable without ML.NET), <c>routing/current.json</c> names the promoted
/// version, and <c>routing/reports/{time}.json</c> keeps each re-optimisation report.
/// </summary>
public sealed class AzureBlobModelStore(BlobContainerClient container) : IModelStore
{
    public const string DefaultContainer = "models";
    private const string Prefix = "routing/";
    private const string CurrentBlob = Prefix + "current.json";
    private const string LatestReportBlob = Prefix + "reports/latest.json";

    private bool _created;

    public async Task<StoredModel?> GetCurrentAsync(CancellationToken cancellationToken)
    {
        await EnsureContainerAsync(cancellationToken);
        CurrentPointer? pointer;
        try
        {
            var content = await container.GetBlobClient(CurrentBlob).DownloadContentAsync(cancellationToken);
            pointer = content.Value.Content.ToObjectFromJson<CurrentPointer>(SandstormJson.Options);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }

        if (pointer is null)
        {
            return null;
        }

        var blob = await container.GetBlobClient(ModelBlob(pointer.Version)).DownloadContentAsync(cancellationToken);
        var metadata = await container.GetBlobClient(MetadataBlob(pointer.Version)).DownloadContentAsync(cancellationToken);
        return new StoredModel(
            metadata.Value.Content.ToObjectFromJson<ModelMetadata>(SandstormJson.Options) ?? throw new InvalidDataException($"metadata of {pointer.Version} is empty"),
            blob.Value.Content.ToArray());
    }

    public async Task SaveAsync(StoredModel model, bool promote, CancellationToken cancellationToken)
    {
        await EnsureContainerAsync(cancellationToken);
        var version = model.Metadata.Version;
        await container.GetBlobClient(ModelBlob(version)).UploadAsync(new BinaryData(model.Content), overwrite: true, cancellationToken);
        await container.GetBlobClient(MetadataBlob(version)).UploadAsync(
            BinaryData.FromObjectAsJson(model.Metadata, SandstormJson.Options), overwrite: true, cancellationToken);
        if (promote)
        {
            // The pointer is written last so a reader never sees a version whose blobs are not there yet.
            await container.GetBlobClient(CurrentBlob).UploadAsync(
                BinaryData.FromObjectAsJson(new CurrentPointer(version, model.Metadata.TrainedAt), SandstormJson.Options), overwrite: true, cancellationToken);
        }
    }

    public async Task SaveReportAsync(ReoptimizationReport report, CancellationToken cancellationToken)
    {
        await EnsureContainerAsync(cancellationToken);
        var name = $"{Prefix}reports/{report.StartedAt.UtcDateTime:yyyyMMdd'T'HHmmss'Z'}.json";
        var content = BinaryData.FromObjectAsJson(report, SandstormJson.Options);
        await container.GetBlobClient(name).UploadAsync(content, overwrite: true, cancellationToken);
        // A fixed name for the API's "last report": listing a growing folder on every request would not scale.
        await container.GetBlobClient(LatestReportBlob).UploadAsync(content, overwrite: true, cancellationToken);
    }

    public async Task<ReoptimizationReport?> GetLatestReportAsync(CancellationToken cancellationToken)
    {
        await EnsureContainerAsync(cancellationToken);
        try
        {
            var content = await container.GetBlobClient(LatestReportBlob).DownloadContentAsync(cancellationToken);
            return content.Value.Content.ToObjectFromJson<ReoptimizationReport>(SandstormJson.Options);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    private async Task EnsureContainerAsync(CancellationToken cancellationToken)
    {
        if (!_created)
        {
            await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
            _created = true;
        }
    }

    private static string ModelBlob(string version) => $"{Prefix}{version}.model";

    private static string MetadataBlob(string version) => $"{Prefix}{version}.json";

    private sealed record CurrentPointer(string Version, DateTimeOffset TrainedAt);
}
