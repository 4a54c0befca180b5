using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Polly.Registry;
using Sandstorm.Providers.Cloud;
using Sandstorm.Providers.Health;
using Sandstorm.Providers.Modal.Protocol;
using Sandstorm.Providers.Resilience;
using Sandstorm.Providers.StandIns;

namespace Sandstorm.Providers.Tests;

/// <summary>What counts as a request that never left, and what the pipeline may therefore repeat.</summary>
public sealed class ResilienceTests
{
    [Fact]
    public async Task NotDelivered_ConnectionRefused_IsTrue()
    {
        using var http = new HttpClient();

        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => http.PostAsync($"http://127.0.0.1:{ClosedPort()}/", new StringContent("x")));

        Assert.True(ProviderErrors.NotDelivered(ex));
        Assert.True(ProviderErrors.Unreachable("e2b", "run process", ex).NeverStarted);
    }

    [Fact]
    public async Task NotDelivered_ConnectionDroppedAfterTheRequestArrived_IsFalse()
    {
        var arrived = 0;
        await using var server = await StandInHost.StartAsync(app => app.MapPost("/", (HttpContext h) =>
        {
            Interlocked.Increment(ref arrived);
            h.Abort();
        }));
        using var http = new HttpClient();

        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => http.PostAsync(server.BaseUrl, new StringContent("x")));

        Assert.True(arrived >= 1);
        Assert.False(ProviderErrors.NotDelivered(ex));
        Assert.False(ProviderErrors.Unreachable("e2b", "run process", ex).NeverStarted);
    }

    [Fact]
    public async Task NotDelivered_GrpcToAClosedPort_IsTrueAndTheMappedFailureNeverStarted()
    {
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{ClosedPort()}");
        var client = new ModalClient.ModalClientClient(channel);

        var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.ContainerExecAsync(new ContainerExecRequest { TaskId = "ta-1" }));

        Assert.True(ProviderErrors.NotDelivered(ex), ex.ToString());
        Assert.True(Modal.ModalProvider.Map(ex, "exec", CloudErrorCodes.ExecutionFailed).NeverStarted);
    }

    [Theory]
    [InlineData(400, true)]
    [InlineData(404, true)]
    [InlineData(429, true)]
    [InlineData(408, false)]
    [InlineData(500, false)]
    [InlineData(502, false)]
    [InlineData(503, false)]
    public void FromHttp_OnlyARefusalIsNeverStarted(int status, bool neverStarted) =>
        Assert.Equal(neverStarted, ProviderErrors.FromHttp("e2b", "run process", (HttpStatusCode)status, "{}", null, CloudErrorCodes.ExecutionFailed).NeverStarted);

    [Fact]
    public async Task Pipeline_CallThatIsNotIdempotent_IsRepeatedOnlyWhenTheAttemptNeverLeft()
    {
        var caller = Caller();
        var attempts = 0;

        // Refused twice before anything was sent, then answered: repeating cannot do it twice.
        var answer = await caller.RunAsync("create sandbox", idempotent: false, TimeSpan.FromSeconds(5), _ =>
        {
            if (++attempts < 3)
            {
                throw ProviderErrors.Unreachable("test", "create sandbox", new HttpRequestException(HttpRequestError.ConnectionError, "connection refused"));
            }

            return Task.FromResult(42);
        }, default);
        Assert.Equal((42, 3), (answer, attempts));

        // Cut after it was sent: it may have been done, so it is not repeated.
        attempts = 0;
        var ex = await Assert.ThrowsAsync<ProviderException>(() => caller.RunAsync<int>("create sandbox", idempotent: false, TimeSpan.FromSeconds(5), _ =>
        {
            attempts++;
            throw ProviderErrors.Unreachable("test", "create sandbox", new HttpRequestException(HttpRequestError.ResponseEnded, "response ended"));
        }, default));
        Assert.Equal(1, attempts);
        Assert.False(ex.NeverStarted);

        // The same cut on an idempotent call is repeated.
        attempts = 0;
        await Assert.ThrowsAsync<ProviderException>(() => caller.RunAsync<int>("kill sandbox", idempotent: true, TimeSpan.FromSeconds(5), _ =>
        {
            attempts++;
            throw ProviderErrors.Unreachable("test", "kill sandbox", new HttpRequestException(HttpRequestError.ResponseEnded, "response ended"));
        }, default));
        Assert.Equal(4, attempts);
    }

    private static ProviderCaller Caller()
    {
        var services = new ServiceCollection();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<ProviderHealthMonitor>();
        services.AddProviderPipeline("test", new CloudProviderOptions { MaxRetries = 3, RetryBaseDelay = TimeSpan.FromMilliseconds(10), BreakerMinimumThroughput = 1000 });
        var provider = services.BuildServiceProvider();
        var pipeline = provider.GetRequiredService<ResiliencePipelineProvider<string>>().GetPipeline("test");
        return new ProviderCaller("test", pipeline, provider.GetRequiredService<ProviderHealthMonitor>().For("test"), TimeProvider.System, NullLogger.Instance);
    }

    /// <summary>A loopback port nothing listens on.</summary>
    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
