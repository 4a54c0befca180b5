using System.Text;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.Options;

namespace Sandstorm.Storage;

/// <summary>Code, files and outputs: inline up to the limit, else a blob in the <c>payloads</c> container.</summary>
public sealed class PayloadStore
{
    private readonly BlobContainerClient _container;
    private readonly int _inlineLimit;
    private readonly CreateOnce<bool> _created;

    public PayloadStore(BlobServiceClient blobs, IOptions<StorageOptions> options)
    {
        _container = blobs.GetBlobContainerClient(options.Value.ContainerName("payloads"));
        _inlineLimit = options.Value.InlineLimitBytes;
        _created = new CreateOnce<bool>(async () =>
        {
            await _container.CreateIfNotExistsAsync();
            return true;
        });
    }

    /// <summary>Keeps small text inline; writes large text to <paramref name="blobName"/> (overwriting: writes are idempotent).</summary>
    public async Task<Payload> PutAsync(string blobName, string text, CancellationToken cancellationToken)
    {
        var bytes = Encoding.UTF8.GetByteCount(text);
        if (bytes <= _inlineLimit)
        {
            return new Payload(text, null, bytes);
        }

        await _created.GetAsync();
        await _container.GetBlobClient(blobName).UploadAsync(BinaryData.FromString(text), overwrite: true, cancellationToken);
        return new Payload(null, blobName, bytes);
    }

    /// <summary>Writes to a blob whatever the size.</summary>
    public async Task PutBlobAsync(string blobName, BinaryData content, CancellationToken cancellationToken)
    {
        await _created.GetAsync();
        await _container.GetBlobClient(blobName).UploadAsync(content, overwrite: true, cancellationToken);
    }

    public async Task<BinaryData?> GetBlobAsync(string blobName, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken);
            return response.Value.Content;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Opens a blob for streaming; null when it does not exist.</summary>
    public async Task<Stream?> OpenReadAsync(string blobName, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _container.GetBlobClient(blobName).DownloadStreamingAsync(cancellationToken: cancellationToken);
            return response.Value.Content;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Names of the blobs under a prefix, in name order.</summary>
    public async Task<IReadOnlyList<string>> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        await _created.GetAsync();
        var names = new List<string>();
        await foreach (var blob in _container.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, cancellationToken))
        {
            names.Add(blob.Name);
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }

    public async Task<string> GetAsync(Payload payload, CancellationToken cancellationToken)
    {
        if (payload.BlobName is null)
        {
            return payload.Inline ?? "";
        }

        var content = await GetBlobAsync(payload.BlobName, cancellationToken)
            ?? throw new InvalidOperationException($"payload blob '{payload.BlobName}' is missing");
        return content.ToString();
    }

    /// <summary>Deletes every blob under a prefix (used to undo a refused submission).</summary>
    public async Task DeletePrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        await _created.GetAsync();
        await foreach (var blob in _container.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, cancellationToken))
        {
            await _container.DeleteBlobIfExistsAsync(blob.Name, cancellationToken: cancellationToken);
        }
    }
}
