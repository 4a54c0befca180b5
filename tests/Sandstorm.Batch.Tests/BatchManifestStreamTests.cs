using System.Text;
using Sandstorm.Core.Errors;
using Sandstorm.Orchestrations.Batches;

namespace Sandstorm.Batch.Tests;

/// <summary>The batch manifest read from a stream: the same items as from a string, and a size cap that holds without a Content-Length.</summary>
public sealed class BatchManifestStreamTests
{
    private const string Item = """{"code":"print(1)","language":"python"}""";

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ParseAsync_ArrayOrJsonLines_GivesTheItemsParseGives(bool jsonLines)
    {
        var text = jsonLines ? $"{Item}\n\n{Item}\n" : $"[{Item}, {Item}]";

        var items = await BatchManifest.ParseAsync(new MemoryStream(Encoding.UTF8.GetBytes(text)), jsonLines, maxItems: 10, maxBytes: 1024, CancellationToken.None);

        Assert.Equal(BatchManifest.ToJsonLines(BatchManifest.Parse(text, jsonLines, 10)), BatchManifest.ToJsonLines(items));
        Assert.Equal(2, items.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ParseAsync_BodyOverTheCap_Is413(bool jsonLines)
    {
        var text = jsonLines ? string.Concat(Enumerable.Repeat(Item + "\n", 100)) : "[" + string.Join(',', Enumerable.Repeat(Item, 100)) + "]";

        var e = await Assert.ThrowsAsync<SandstormException>(() =>
            BatchManifest.ParseAsync(new MemoryStream(Encoding.UTF8.GetBytes(text)), jsonLines, maxItems: 1000, maxBytes: 1024, CancellationToken.None));

        Assert.Equal(413, e.Status);
        Assert.Equal(ErrorCodes.PayloadTooLarge, e.Code);
    }

    [Fact]
    public async Task ParseAsync_NullInsideAnItem_Is400NamingItsField()
    {
        var text = "[" + Item + """, {"code":"x","language":"python","files":{"a":null}}]""";

        var e = await Assert.ThrowsAsync<SandstormException>(() =>
            BatchManifest.ParseAsync(new MemoryStream(Encoding.UTF8.GetBytes(text)), jsonLines: false, maxItems: 10, maxBytes: 1024, CancellationToken.None));

        Assert.Equal(400, e.Status);
        Assert.Contains("items[1].files.a", e.Errors!.Keys);
    }
}
