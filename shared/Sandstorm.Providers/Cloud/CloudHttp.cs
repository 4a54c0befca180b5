using System.Net.Http.Json;
using System.Text.Json;

namespace Sandstorm.Providers.Cloud;

/// <summary>HTTP plumbing shared by the REST adapters: every failure leaves here as a <see cref="ProviderException"/>.</summary>
internal static class CloudHttp
{
    /// <summary>Sends a request; a non-success status becomes a mapped <see cref="ProviderException"/>.</summary>
    public static async Task<HttpResponseMessage> SendAsync(
        HttpClient http,
        HttpRequestMessage request,
        string provider,
        string operation,
        string failureCode,
        TimeProvider time,
        CancellationToken cancellationToken,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, completion, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw ProviderErrors.Unreachable(provider, operation, ex);
        }
        catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            // HttpClient's own timeout, not the caller's cancellation.
            throw new ProviderException(provider, CloudErrorCodes.Timeout, $"{provider} {operation}: no answer in time", transient: true, ex);
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var body = await ReadBodySafeAsync(response, cancellationToken);
            throw ProviderErrors.FromHttp(provider, operation, response.StatusCode, body, RetryAfter(response, time), failureCode);
        }
    }

    /// <summary>Reads a JSON body; a body that does not parse becomes a transient bad-response error.</summary>
    public static async Task<T> ReadJsonAsync<T>(HttpResponseMessage response, string provider, string operation, CancellationToken cancellationToken)
    {
        try
        {
            var value = await response.Content.ReadFromJsonAsync<T>(CloudJson.Options, cancellationToken);
            return value ?? throw ProviderErrors.BadResponse(provider, operation, "empty body");
        }
        catch (JsonException ex)
        {
            throw ProviderErrors.BadResponse(provider, operation, ex.Message, ex);
        }
        catch (NotSupportedException ex)
        {
            throw ProviderErrors.BadResponse(provider, operation, ex.Message, ex);
        }
        catch (HttpRequestException ex)
        {
            throw ProviderErrors.Unreachable(provider, operation, ex);
        }
        catch (IOException ex)
        {
            throw ProviderErrors.Unreachable(provider, operation, ex);
        }
    }

    /// <summary>Retry-After as a delay, from either of its two forms.</summary>
    public static TimeSpan? RetryAfter(HttpResponseMessage response, TimeProvider time)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta)
        {
            return delta;
        }

        if (header?.Date is { } date)
        {
            var wait = date - time.GetUtcNow();
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        return null;
    }

    private static async Task<string> ReadBodySafeAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadAsStringAsync(cancellationToken);
        }
        catch (HttpRequestException)
        {
            return "";
        }
        catch (IOException)
        {
            return "";
        }
    }
}

/// <summary>JSON settings for provider wire formats: names are given explicitly on each DTO.</summary>
internal static class CloudJson
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };
}
