using System.Net.Http.Json;
using Sandstorm.Providers.Resilience;

namespace Sandstorm.Providers.Cloud;

/// <summary>
/// One REST provider's calls, shaped the same for every adapter: a request is built afresh for each attempt, authorized
/// the provider's way, sent through the provider's resilience pipeline and health window, and every failure leaves as a
/// mapped <see cref="ProviderException"/>. Adapters keep only what is particular to them (paths, bodies, streaming).
/// </summary>
internal sealed class CloudRest
{
    private readonly string _provider;
    private readonly HttpClient _http;
    private readonly ProviderCaller _caller;
    private readonly TimeProvider _time;
    private readonly Func<HttpRequestMessage, CancellationToken, ValueTask> _authorize;

    /// <param name="authorize">Adds the provider's credential to a request (a header, or a bearer token it may have to fetch).</param>
    public CloudRest(string provider, HttpClient http, ProviderCaller caller, TimeProvider time, Func<HttpRequestMessage, CancellationToken, ValueTask> authorize)
    {
        _provider = provider;
        _http = http;
        _caller = caller;
        _time = time;
        _authorize = authorize;
    }

    /// <summary>The provider's pipeline and health window, for calls that are not plain requests (streams, long executions).</summary>
    public ProviderCaller Caller => _caller;

    /// <summary>One call whose answer is JSON.</summary>
    public Task<T> JsonAsync<T>(CloudCall call, CancellationToken cancellationToken) =>
        _caller.RunAsync(call.Operation, call.Idempotent, call.Timeout, async ct =>
        {
            using var response = await SendOnceAsync(call, ct);
            return await CloudHttp.ReadJsonAsync<T>(response, _provider, call.Operation, ct);
        }, cancellationToken, tenant: call.Tenant);

    /// <summary>One call whose answer is raw bytes (a file download).</summary>
    public Task<byte[]> BytesAsync(CloudCall call, CancellationToken cancellationToken) =>
        _caller.RunAsync(call.Operation, call.Idempotent, call.Timeout, async ct =>
        {
            using var response = await SendOnceAsync(call, ct);
            try
            {
                return await response.Content.ReadAsByteArrayAsync(ct);
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                throw ProviderErrors.Unreachable(_provider, call.Operation, e);
            }
        }, cancellationToken, tenant: call.Tenant);

    /// <summary>One call whose answer only has to be a success.</summary>
    public Task SendAsync(CloudCall call, CancellationToken cancellationToken) =>
        _caller.RunAsync(call.Operation, call.Idempotent, call.Timeout, async ct =>
        {
            using var response = await SendOnceAsync(call, ct);
        }, cancellationToken, tenant: call.Tenant);

    /// <summary>Deletes a sandbox; one that is already gone counts as deleted, so releasing is idempotent.</summary>
    public Task DeleteAsync(CloudCall call, CancellationToken cancellationToken) =>
        _caller.RunAsync(call.Operation, call.Idempotent, call.Timeout, async ct =>
        {
            try
            {
                using var response = await SendOnceAsync(call, ct);
            }
            catch (ProviderException ex) when (ex.Code == CloudErrorCodes.NotFound)
            {
                // Already gone (deleted before, or timed out at the provider).
            }
        }, cancellationToken, tenant: call.Tenant);

    /// <summary>
    /// One attempt, outside the pipeline: for calls that run inside their own <see cref="ProviderCaller.RunAsync{T}"/>
    /// because they treat the answer specially (a streamed body, a run timeout that is a result rather than a failure).
    /// </summary>
    public async Task<HttpResponseMessage> SendOnceAsync(CloudCall call, CancellationToken cancellationToken, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        using var message = call.Build();
        if (call.Authorize)
        {
            await _authorize(message, cancellationToken);
        }

        return await CloudHttp.SendAsync(_http, message, _provider, call.Operation, call.FailureCode, _time, cancellationToken, completion);
    }

    /// <summary>A JSON body in the provider wire format.</summary>
    public static HttpContent Json<T>(T body) => JsonContent.Create(body, options: CloudJson.Options);
}

/// <summary>
/// What one provider call is: its name (in logs and errors), whether repeating it is safe, how long one attempt may take,
/// the error code of a plain 4xx, and how to build its request (called again for every attempt).
/// </summary>
/// <param name="Authorize">False for calls that must not carry the provider credential (E2B's envd, inside the sandbox).</param>
internal sealed record CloudCall(string Operation, bool Idempotent, TimeSpan Timeout, string FailureCode, Func<HttpRequestMessage> Build, bool Authorize = true)
{
    /// <summary>The tenant the call is made for; its rate-limit and quota rejections count against its own breaker.</summary>
    public string? Tenant { get; init; }

    public static Func<HttpRequestMessage> Request(HttpMethod method, Uri uri, Func<HttpContent>? content = null) =>
        () => new HttpRequestMessage(method, uri) { Content = content?.Invoke() };
}
