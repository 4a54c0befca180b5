using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Edge.Agent;

/// <summary>The agent's only channel: outbound HTTPS calls to the control plane's <c>/v1/edge</c> endpoints.</summary>
public sealed class ControlPlaneClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly string _agentPath;

    public ControlPlaneClient(AgentConfig config, HttpMessageHandler? handler = null)
    {
        if (ControlPlaneUrl.Problem(config.ControlPlane) is { } problem)
        {
            throw new InvalidOperationException(problem);
        }

        _http = Create(config.ControlPlane, handler);
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", config.AgentToken);
        _agentPath = $"v1/edge/agents/{Uri.EscapeDataString(config.AgentId)}";
    }

    /// <summary>Enrols with an enrollment token (<c>POST /v1/edge/agents</c>).</summary>
    public static async Task<EdgeEnrollResponse> EnrollAsync(string controlPlane, string enrollmentToken, EdgeEnrollRequest request, HttpMessageHandler? handler, CancellationToken ct)
    {
        if (ControlPlaneUrl.Problem(controlPlane) is { } problem)
        {
            throw new InvalidOperationException(problem);
        }

        using var http = Create(controlPlane, handler);
        using var message = new HttpRequestMessage(HttpMethod.Post, "v1/edge/agents") { Content = Json(request) };
        message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", enrollmentToken);
        return await SendAsync<EdgeEnrollResponse>(http, message, ct);
    }

    public Task<EdgeHeartbeatAck> HeartbeatAsync(EdgeHeartbeat heartbeat, CancellationToken ct) =>
        SendAsync<EdgeHeartbeatAck>(_http, new HttpRequestMessage(HttpMethod.Post, $"{_agentPath}/heartbeat") { Content = Json(heartbeat) }, ct);

    public Task<EdgeJobBatch> PollAsync(int waitSeconds, int max, CancellationToken ct) =>
        SendAsync<EdgeJobBatch>(_http, new HttpRequestMessage(HttpMethod.Get, $"{_agentPath}/jobs?wait={waitSeconds}&max={max}"), ct);

    /// <summary>Posts an outbox item as it was stored (the JSON body is sent verbatim).</summary>
    public async Task DeliverAsync(OutboxItem item, string json, CancellationToken ct)
    {
        var path = item.Kind switch
        {
            Outbox.ResultKind => $"{_agentPath}/jobs/{Uri.EscapeDataString(item.Id)}/result",
            Outbox.TelemetryKind => $"{_agentPath}/telemetry",
            _ => throw new ControlPlaneException(HttpStatusCode.BadRequest, $"unknown outbox item kind '{item.Kind}'"),
        };
        using var message = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        await SendAsync<JsonElement>(_http, message, ct);
    }

    public void Dispose() => _http.Dispose();

    private static HttpClient Create(string controlPlane, HttpMessageHandler? handler)
    {
        var http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        http.BaseAddress = new Uri(controlPlane.TrimEnd('/') + "/");

        // Long polls wait up to 30 s on the server; everything else answers fast.
        http.Timeout = TimeSpan.FromSeconds(60);
        return http;
    }

    private static StringContent Json<T>(T body) =>
        new(JsonSerializer.Serialize(body, SandstormJson.Options), Encoding.UTF8, "application/json");

    private static async Task<T> SendAsync<T>(HttpClient http, HttpRequestMessage message, CancellationToken ct)
    {
        using (message)
        {
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(message, ct);
            }
            catch (HttpRequestException e)
            {
                throw new ControlPlaneException(null, $"control plane unreachable: {e.Message}", e);
            }
            catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
            {
                throw new ControlPlaneException(null, "control plane did not answer in time", e);
            }

            using (response)
            {
                if (!response.IsSuccessStatusCode)
                {
                    var body = await response.Content.ReadAsStringAsync(ct);
                    throw new ControlPlaneException(response.StatusCode, $"{(int)response.StatusCode} {Detail(body)}");
                }

                return await response.Content.ReadFromJsonAsync<T>(SandstormJson.Options, ct)
                    ?? throw new ControlPlaneException(response.StatusCode, "empty answer");
            }
        }
    }

    private static string Detail(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.TryGetProperty("detail", out var detail) ? detail.GetString() ?? body : body;
        }
        catch (JsonException)
        {
            return body.Length > 300 ? body[..300] : body;
        }
    }
}

/// <summary>A failed control-plane call: <see cref="Status"/> is null when it could not be reached at all.</summary>
public sealed class ControlPlaneException : Exception
{
    public ControlPlaneException(HttpStatusCode? status, string message, Exception? inner = null)
        : base(message, inner) => Status = status;

    public ControlPlaneException()
    {
    }

    public ControlPlaneException(string message)
        : base(message)
    {
    }

    public ControlPlaneException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public HttpStatusCode? Status { get; }

    /// <summary>True when retrying the same request cannot help (the control plane refused it).</summary>
    public bool Permanent => Status is { } s && (int)s is >= 400 and < 500 && s is not (HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests);
}
