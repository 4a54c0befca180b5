using Azure;
using Sandstorm.Storage;

namespace Sandstorm.Core.Tests;

/// <summary>A table or container created on first use: a failure must not be kept for the rest of the process's life.</summary>
public sealed class CreateOnceTests
{
    [Fact]
    public async Task FailedCreation_IsRetried_AndASuccessIsKept()
    {
        var calls = 0;
        var once = new CreateOnce<int>(() =>
        {
            calls++;
            return calls <= 3 ? throw new RequestFailedException(409, "TableBeingDeleted") : Task.FromResult(7);
        });

        // Three attempts in the first call, all failing: the caller sees the error.
        await Assert.ThrowsAsync<RequestFailedException>(once.GetAsync);
        Assert.Equal(3, calls);

        // The next caller tries again rather than getting the cached failure; the success is kept.
        Assert.Equal(7, await once.GetAsync());
        Assert.Equal(7, await once.GetAsync());
        Assert.Equal(4, calls);
    }
}
