using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Sandstorm.Storage;

namespace Sandstorm.IntegrationTests;

/// <summary>API key resolution over real Azurite: unknown keys are remembered briefly, but never without bound.</summary>
[Collection(LocalHostCollection.Name)]
public sealed class ApiKeyStoreTests(LocalHostFixture fixture)
{
    [Fact]
    public async Task UnknownKeys_Flood_DoesNotGrowTheCacheBeyondItsBound_AndKnownKeysStillResolve()
    {
        var tables = new TableProvider(new TableServiceClient(fixture.Azurite.ConnectionString), Options.Create(new StorageOptions()));
        var store = new ApiKeyStore(tables, TimeProvider.System, maxCached: 20);
        var key = await store.CreateAsync("t-cache", "test", CancellationToken.None);

        for (var i = 0; i < 60; i++)
        {
            Assert.Null(await store.ResolveAsync("sk_unknown_" + i, CancellationToken.None));
        }

        Assert.True(store.CachedCount <= 20, $"{store.CachedCount} resolutions cached");
        Assert.Equal("t-cache", await store.ResolveAsync(key, CancellationToken.None));
        Assert.Null(await store.ResolveAsync("sk_unknown_0", CancellationToken.None));
    }
}
