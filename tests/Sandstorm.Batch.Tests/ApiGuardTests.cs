using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Api;

namespace Sandstorm.Batch.Tests;

/// <summary>The API's last line: whatever a handler throws, the caller gets problem+json, never a bare 500.</summary>
public sealed class ApiGuardTests
{
    [Fact]
    public async Task Guard_UnexpectedException_AnswersInternalErrorProblemWithTheTraceId()
    {
        var http = Context();
        http.TraceIdentifier = "trace-42";

        var result = await RunEndpoints.Guard(http, () => throw new InvalidOperationException("table service said no"));
        var (status, body) = await ExecuteAsync(result, http);

        Assert.Equal(500, status);
        Assert.Equal("https://sandstorm.dev/problems/internal-error", body.GetProperty("type").GetString());
        Assert.Contains("trace-42", body.GetProperty("detail").GetString());
        Assert.DoesNotContain("table service", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Guard_CallerWentAway_LetsTheCancellationThrough()
    {
        using var aborted = new CancellationTokenSource();
        await aborted.CancelAsync();
        var http = Context();
        http.RequestAborted = aborted.Token;

        await Assert.ThrowsAsync<OperationCanceledException>(() => RunEndpoints.Guard(http, () => throw new OperationCanceledException(aborted.Token)));
    }

    private static DefaultHttpContext Context()
    {
        var services = new ServiceCollection().AddLogging().AddProblemDetails().BuildServiceProvider();
        return new DefaultHttpContext { RequestServices = services };
    }

    private static async Task<(int Status, JsonElement Body)> ExecuteAsync(IResult result, DefaultHttpContext http)
    {
        using var stream = new MemoryStream();
        http.Response.Body = stream;
        await result.ExecuteAsync(http);
        return (http.Response.StatusCode, JsonDocument.Parse(stream.ToArray()).RootElement.Clone());
    }
}
