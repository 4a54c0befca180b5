using System.Runtime.CompilerServices;
using Azure;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Client;

/// <summary>The tenant's sandboxes page by page, following the API's <c>next</c> token.</summary>
internal sealed class SandboxPages(SandstormClient client, IReadOnlyDictionary<string, string>? metadata, bool includeEnded, CancellationToken cancellationToken)
    : AsyncPageable<SandboxInfo>(cancellationToken)
{
    public Pageable<SandboxInfo> Sync => Pageable<SandboxInfo>.FromPages(SyncPages());

    public override async IAsyncEnumerable<Page<SandboxInfo>> AsPages(string? continuationToken = null, int? pageSizeHint = null)
    {
        var next = continuationToken;
        do
        {
            var (items, following, raw) = await client.GetSandboxPageAsync(metadata, includeEnded, next, pageSizeHint, true, CancellationToken).ConfigureAwait(false);
            yield return Page<SandboxInfo>.FromValues(items, following, raw);
            next = following;
        }
        while (next is not null);
    }

    private IEnumerable<Page<SandboxInfo>> SyncPages()
    {
        string? next = null;
        do
        {
            var (items, following, raw) = client.GetSandboxPageAsync(metadata, includeEnded, next, null, false, CancellationToken).EnsureCompleted();
            yield return Page<SandboxInfo>.FromValues(items, following, raw);
            next = following;
        }
        while (next is not null);
    }
}
