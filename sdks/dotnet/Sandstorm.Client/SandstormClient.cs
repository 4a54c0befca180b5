using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Core;
using Azure.Core.Pipeline;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Client;

/// <summary>
/// The Sandstorm API in the Azure SDK's conventions: one-shot runs, kept sandboxes (commands streamed as they run,
/// files), batches and provenance. Every member is virtual so tests can mock it (see <see cref="SandstormModelFactory"/>).
/// </summary>
public class SandstormClient
{
    private static readonly HashSet<RunStatus> Terminal = [RunStatus.Succeeded, RunStatus.Failed, RunStatus.TimedOut, RunStatus.Cancelled, RunStatus.Quarantined];
    private readonly HttpPipeline _pipeline = null!;
    private readonly SandstormClientOptions _options = null!;

    /// <summary>For mocking.</summary>
    protected SandstormClient()
    {
        Endpoint = null!;
    }

    /// <param name="endpoint">Where the API is (<c>http://127.0.0.1:7071</c> for the local host).</param>
    /// <param name="credential">The tenant's API key, sent as a bearer token.</param>
    /// <param name="options">Retries, transport, diagnostics and run defaults.</param>
    public SandstormClient(Uri endpoint, AzureKeyCredential credential, SandstormClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(credential);
        Endpoint = endpoint;
        _options = options ?? new SandstormClientOptions();
        _pipeline = HttpPipelineBuilder.Build(
            new HttpPipelineOptions(_options)
            {
                PerRetryPolicies = { new BearerKeyPolicy(credential) },
                ResponseClassifier = new ResponseClassifier(),
                RequestFailedDetailsParser = ProblemDetailsParser.Instance,
            });
    }

    /// <summary>A client from <c>SANDSTORM_BASE_URL</c> (default the local host) and <c>SANDSTORM_API_KEY</c>.</summary>
    public static SandstormClient FromEnvironment(SandstormClientOptions? options = null)
    {
        var key = Environment.GetEnvironmentVariable("SANDSTORM_API_KEY");
        if (string.IsNullOrEmpty(key))
        {
            throw new InvalidOperationException("SANDSTORM_API_KEY is not set");
        }

        var url = Environment.GetEnvironmentVariable("SANDSTORM_BASE_URL") is { Length: > 0 } u ? u : "http://127.0.0.1:7071";
        return new SandstormClient(new Uri(url), new AzureKeyCredential(key), options);
    }

    /// <summary>The API's base address.</summary>
    public virtual Uri Endpoint { get; }

    // ---- runs ------------------------------------------------------------------------------------------------------

    /// <summary>Runs code and waits for its outcome (the API long-polls, then the client polls until it settles).</summary>
    public virtual async Task<Response<RunResult>> RunAsync(RunRequest request, CancellationToken cancellationToken = default) =>
        await RunCoreAsync(request, true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="RunAsync"/>
    public virtual Response<RunResult> Run(RunRequest request, CancellationToken cancellationToken = default) =>
        RunCoreAsync(request, false, cancellationToken).EnsureCompleted();

    /// <summary>Submits a run without waiting for it.</summary>
    public virtual async Task<Response<RunResult>> SubmitRunAsync(RunRequest request, CancellationToken cancellationToken = default) =>
        await SendJsonAsync<RunResult>(RequestMethod.Post, "v1/runs", WithDefaults(request), true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="SubmitRunAsync"/>
    public virtual Response<RunResult> SubmitRun(RunRequest request, CancellationToken cancellationToken = default) =>
        SendJsonAsync<RunResult>(RequestMethod.Post, "v1/runs", WithDefaults(request), false, cancellationToken).EnsureCompleted();

    /// <summary>A run with its route, cost, provenance reference and Shield report.</summary>
    public virtual async Task<Response<RunResult>> GetRunAsync(string runId, CancellationToken cancellationToken = default) =>
        await SendJsonAsync<RunResult>(RequestMethod.Get, $"v1/runs/{Escape(runId)}", null, true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="GetRunAsync"/>
    public virtual Response<RunResult> GetRun(string runId, CancellationToken cancellationToken = default) =>
        SendJsonAsync<RunResult>(RequestMethod.Get, $"v1/runs/{Escape(runId)}", null, false, cancellationToken).EnsureCompleted();

    /// <summary>The signed provenance bundle of a settled run (JSON; see docs/provenance.md), to verify with <c>sandstorm verify</c>.</summary>
    public virtual async Task<Response<BinaryData>> GetRunProvenanceAsync(string runId, CancellationToken cancellationToken = default) =>
        await SendBinaryAsync(RequestMethod.Get, $"v1/runs/{Escape(runId)}/provenance", true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="GetRunProvenanceAsync"/>
    public virtual Response<BinaryData> GetRunProvenance(string runId, CancellationToken cancellationToken = default) =>
        SendBinaryAsync(RequestMethod.Get, $"v1/runs/{Escape(runId)}/provenance", false, cancellationToken).EnsureCompleted();

    /// <summary>Billed usage in [from, to) (default the last 30 days), as the API answers it.</summary>
    public virtual async Task<Response<JsonElement>> GetUsageAsync(DateTimeOffset? from = null, DateTimeOffset? to = null, CancellationToken cancellationToken = default) =>
        await SendJsonAsync<JsonElement>(RequestMethod.Get, "v1/usage" + Query(("from", from?.ToString("O")), ("to", to?.ToString("O"))), null, true, cancellationToken).ConfigureAwait(false);

    // ---- sandboxes ---------------------------------------------------------------------------------------------------

    /// <summary>Creates a kept sandbox, placed by the same intent as a run.</summary>
    public virtual async Task<Response<SandboxInfo>> CreateSandboxAsync(SandboxCreateRequest? request = null, CancellationToken cancellationToken = default) =>
        await SendJsonAsync<SandboxInfo>(RequestMethod.Post, "v1/sandboxes", WithDefaults(request ?? new SandboxCreateRequest()), true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="CreateSandboxAsync"/>
    public virtual Response<SandboxInfo> CreateSandbox(SandboxCreateRequest? request = null, CancellationToken cancellationToken = default) =>
        SendJsonAsync<SandboxInfo>(RequestMethod.Post, "v1/sandboxes", WithDefaults(request ?? new SandboxCreateRequest()), false, cancellationToken).EnsureCompleted();

    /// <summary>A sandbox by id; another tenant's answers 404 like a missing one.</summary>
    public virtual async Task<Response<SandboxInfo>> GetSandboxAsync(string sandboxId, CancellationToken cancellationToken = default) =>
        await SendJsonAsync<SandboxInfo>(RequestMethod.Get, $"v1/sandboxes/{Escape(sandboxId)}", null, true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="GetSandboxAsync"/>
    public virtual Response<SandboxInfo> GetSandbox(string sandboxId, CancellationToken cancellationToken = default) =>
        SendJsonAsync<SandboxInfo>(RequestMethod.Get, $"v1/sandboxes/{Escape(sandboxId)}", null, false, cancellationToken).EnsureCompleted();

    /// <summary>The tenant's sandboxes (running ones unless <paramref name="includeEnded"/>), page by page.</summary>
    public virtual AsyncPageable<SandboxInfo> GetSandboxesAsync(IReadOnlyDictionary<string, string>? metadata = null, bool includeEnded = false, CancellationToken cancellationToken = default) =>
        new SandboxPages(this, metadata, includeEnded, cancellationToken);

    /// <inheritdoc cref="GetSandboxesAsync"/>
    public virtual Pageable<SandboxInfo> GetSandboxes(IReadOnlyDictionary<string, string>? metadata = null, bool includeEnded = false, CancellationToken cancellationToken = default) =>
        new SandboxPages(this, metadata, includeEnded, cancellationToken).Sync;

    /// <summary>Ends a sandbox now: everything in it is killed, its life billed, its record signed.</summary>
    public virtual async Task<Response> KillSandboxAsync(string sandboxId, CancellationToken cancellationToken = default) =>
        await SendAsync(Create(RequestMethod.Delete, $"v1/sandboxes/{Escape(sandboxId)}"), true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="KillSandboxAsync"/>
    public virtual Response KillSandbox(string sandboxId, CancellationToken cancellationToken = default) =>
        SendAsync(Create(RequestMethod.Delete, $"v1/sandboxes/{Escape(sandboxId)}"), false, cancellationToken).EnsureCompleted();

    /// <summary>Runs a command and yields its events (start, stdout, stderr, end) as they come; a dropped stream resumes where it stopped.</summary>
    public virtual async IAsyncEnumerable<CommandEvent> RunCommandStreamingAsync(string sandboxId, CommandRequest command, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var parser = new CommandEventParser();
        var message = StreamMessage(RequestMethod.Post, $"v1/sandboxes/{Escape(sandboxId)}/commands", command with { Background = false }, null);
        string? commandId = null;
        for (var attempt = 0; ; attempt++)
        {
            using (message)
            {
                await SendAsync(message, true, cancellationToken).ConfigureAwait(false);
                commandId ??= message.Response.Headers.TryGetValue("Location", out var location) ? location.Split('/')[^1] : null;
                using var reader = new StreamReader(message.Response.ContentStream!, Encoding.UTF8);
                var ended = false;
                while (!ended)
                {
                    string? line;
                    try
                    {
                        line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                    }
                    catch (IOException) when (!cancellationToken.IsCancellationRequested)
                    {
                        break;
                    }

                    if (line is null)
                    {
                        break;
                    }

                    if (parser.Feed(line) is { } e)
                    {
                        commandId ??= e.CommandId;
                        ended = e.Kind == CommandEventKind.End;
                        yield return e;
                    }
                }

                if (ended)
                {
                    yield break;
                }
            }

            if (commandId is null || attempt >= 3)
            {
                throw new RequestFailedException(0, $"the event stream of command {commandId ?? "(unknown)"} ended before the command did", "stream-ended", null);
            }

            message = StreamMessage(RequestMethod.Get, $"v1/sandboxes/{Escape(sandboxId)}/commands/{Escape(commandId)}/events", null, parser.LastEventId);
        }
    }

    /// <summary>Runs a command to its end and returns what it printed (whatever its exit code).</summary>
    public virtual async Task<Response<CommandResult>> RunCommandAsync(string sandboxId, CommandRequest command, CancellationToken cancellationToken = default)
    {
        var collector = new Collector();
        await foreach (var e in RunCommandStreamingAsync(sandboxId, command, cancellationToken).ConfigureAwait(false))
        {
            collector.Add(e);
        }

        return collector.Result();
    }

    /// <inheritdoc cref="RunCommandAsync"/>
    public virtual Response<CommandResult> RunCommand(string sandboxId, CommandRequest command, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(command);
        var parser = new CommandEventParser();
        var collector = new Collector();
        using var message = StreamMessage(RequestMethod.Post, $"v1/sandboxes/{Escape(sandboxId)}/commands", command with { Background = false }, null);
        SendAsync(message, false, cancellationToken).EnsureCompleted();
        using var reader = new StreamReader(message.Response.ContentStream!, Encoding.UTF8);
        while (reader.ReadLine() is { } line)
        {
            if (parser.Feed(line) is { } e)
            {
                collector.Add(e);
                if (e.Kind == CommandEventKind.End)
                {
                    return collector.Result();
                }
            }
        }

        throw new RequestFailedException(0, "the command's event stream ended before the command did", "stream-ended", null);
    }

    /// <summary>Writes a whole file (under <c>/home/user</c>, or relative to it, or <c>/tmp</c>); its directories are created.</summary>
    public virtual async Task<Response<SandboxFileEntry>> WriteFileAsync(string sandboxId, string path, BinaryData content, CancellationToken cancellationToken = default) =>
        await WriteFileCoreAsync(sandboxId, path, content, true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="WriteFileAsync"/>
    public virtual Response<SandboxFileEntry> WriteFile(string sandboxId, string path, BinaryData content, CancellationToken cancellationToken = default) =>
        WriteFileCoreAsync(sandboxId, path, content, false, cancellationToken).EnsureCompleted();

    /// <summary>Reads a file's bytes.</summary>
    public virtual async Task<Response<BinaryData>> ReadFileAsync(string sandboxId, string path, CancellationToken cancellationToken = default) =>
        await SendBinaryAsync(RequestMethod.Get, $"v1/sandboxes/{Escape(sandboxId)}/files/content" + Query(("path", path)), true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="ReadFileAsync"/>
    public virtual Response<BinaryData> ReadFile(string sandboxId, string path, CancellationToken cancellationToken = default) =>
        SendBinaryAsync(RequestMethod.Get, $"v1/sandboxes/{Escape(sandboxId)}/files/content" + Query(("path", path)), false, cancellationToken).EnsureCompleted();

    /// <summary>A directory's entries, <paramref name="depth"/> levels down.</summary>
    public virtual async Task<Response<IReadOnlyList<SandboxFileEntry>>> ListFilesAsync(string sandboxId, string path = "/home/user", int depth = 1, CancellationToken cancellationToken = default) =>
        await ListFilesCoreAsync(sandboxId, path, depth, true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="ListFilesAsync"/>
    public virtual Response<IReadOnlyList<SandboxFileEntry>> ListFiles(string sandboxId, string path = "/home/user", int depth = 1, CancellationToken cancellationToken = default) =>
        ListFilesCoreAsync(sandboxId, path, depth, false, cancellationToken).EnsureCompleted();

    // ---- batches -----------------------------------------------------------------------------------------------------

    /// <summary>Submits a batch of runs; the operation completes when every item has settled (or the batch was cancelled).</summary>
    public virtual async Task<BatchOperation> SubmitBatchAsync(WaitUntil waitUntil, IEnumerable<RunRequest> requests, CancellationToken cancellationToken = default)
    {
        var operation = await SubmitBatchCoreAsync(requests, true, cancellationToken).ConfigureAwait(false);
        if (waitUntil == WaitUntil.Completed)
        {
            await operation.WaitForCompletionAsync(_options.PollInterval, cancellationToken).ConfigureAwait(false);
        }

        return operation;
    }

    /// <inheritdoc cref="SubmitBatchAsync"/>
    public virtual BatchOperation SubmitBatch(WaitUntil waitUntil, IEnumerable<RunRequest> requests, CancellationToken cancellationToken = default)
    {
        var operation = SubmitBatchCoreAsync(requests, false, cancellationToken).EnsureCompleted();
        if (waitUntil == WaitUntil.Completed)
        {
            operation.WaitForCompletion(_options.PollInterval, cancellationToken);
        }

        return operation;
    }

    /// <summary>A batch's counts and cost so far.</summary>
    public virtual async Task<Response<BatchInfo>> GetBatchAsync(string batchId, CancellationToken cancellationToken = default) =>
        await GetBatchCoreAsync(batchId, true, cancellationToken).ConfigureAwait(false);

    /// <inheritdoc cref="GetBatchAsync"/>
    public virtual Response<BatchInfo> GetBatch(string batchId, CancellationToken cancellationToken = default) =>
        GetBatchCoreAsync(batchId, false, cancellationToken).EnsureCompleted();

    // ---- internals ---------------------------------------------------------------------------------------------------

    internal async ValueTask<Response<BatchInfo>> GetBatchCoreAsync(string batchId, bool async, CancellationToken ct)
    {
        var response = await SendJsonAsync<JsonElement>(RequestMethod.Get, $"v1/batches/{Escape(batchId)}", null, async, ct).ConfigureAwait(false);
        var b = response.Value;
        var counts = b.GetProperty("counts");
        return Response.FromValue(
            new BatchInfo(
                b.GetProperty("id").GetString()!,
                b.GetProperty("status").GetString()!,
                b.GetProperty("total").GetInt32(),
                counts.GetProperty("succeeded").GetInt32(),
                counts.GetProperty("failed").GetInt32(),
                counts.GetProperty("cancelled").GetInt32(),
                b.GetProperty("cost").GetDecimal()),
            response.GetRawResponse());
    }

    internal async ValueTask<(IReadOnlyList<SandboxInfo> Items, string? Next, Response Raw)> GetSandboxPageAsync(
        IReadOnlyDictionary<string, string>? metadata, bool includeEnded, string? next, int? pageSize, bool async, CancellationToken ct)
    {
        var query = new List<(string, string?)> { ("state", includeEnded ? "all" : "running"), ("next", next), ("limit", pageSize?.ToString(System.Globalization.CultureInfo.InvariantCulture)) };
        query.AddRange((metadata ?? new Dictionary<string, string>()).Select(p => ("metadata", (string?)$"{p.Key}={p.Value}")));
        var response = await SendJsonAsync<JsonElement>(RequestMethod.Get, "v1/sandboxes" + Query([.. query]), null, async, ct).ConfigureAwait(false);
        var items = response.Value.GetProperty("sandboxes").Deserialize<List<SandboxInfo>>(SandstormJson.Options)!;
        var following = response.Value.TryGetProperty("next", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        return (items, following, response.GetRawResponse());
    }

    private async ValueTask<Response<RunResult>> RunCoreAsync(RunRequest request, bool async, CancellationToken ct)
    {
        var wait = Math.Clamp(_options.RunWait.TotalSeconds, 0, 300).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var response = await SendJsonAsync<RunResult>(RequestMethod.Post, $"v1/runs?wait={wait}", WithDefaults(request), async, ct).ConfigureAwait(false);
        while (!Terminal.Contains(response.Value.Status))
        {
            if (async)
            {
                await Task.Delay(_options.PollInterval, ct).ConfigureAwait(false);
            }
            else
            {
                ct.WaitHandle.WaitOne(_options.PollInterval);
                ct.ThrowIfCancellationRequested();
            }

            response = await SendJsonAsync<RunResult>(RequestMethod.Get, $"v1/runs/{Escape(response.Value.Id)}", null, async, ct).ConfigureAwait(false);
        }

        return response;
    }

    private async ValueTask<BatchOperation> SubmitBatchCoreAsync(IEnumerable<RunRequest> requests, bool async, CancellationToken ct)
    {
        var response = await SendJsonAsync<JsonElement>(RequestMethod.Post, "v1/batches", requests.Select(WithDefaults).ToList(), async, ct).ConfigureAwait(false);
        return new BatchOperation(this, response.Value.GetProperty("id").GetString()!, response.GetRawResponse());
    }

    private async ValueTask<Response<SandboxFileEntry>> WriteFileCoreAsync(string sandboxId, string path, BinaryData content, bool async, CancellationToken ct)
    {
        var message = Create(RequestMethod.Put, $"v1/sandboxes/{Escape(sandboxId)}/files/content" + Query(("path", path)));
        message.Request.Headers.SetValue("Content-Type", "application/octet-stream");
        message.Request.Content = RequestContent.Create(content);
        using (message)
        {
            var response = await SendAsync(message, async, ct).ConfigureAwait(false);
            return Response.FromValue(Entry(JsonDocument.Parse(response.Content.ToMemory()).RootElement), response);
        }
    }

    private async ValueTask<Response<IReadOnlyList<SandboxFileEntry>>> ListFilesCoreAsync(string sandboxId, string path, int depth, bool async, CancellationToken ct)
    {
        var response = await SendJsonAsync<JsonElement>(
            RequestMethod.Get, $"v1/sandboxes/{Escape(sandboxId)}/files" + Query(("path", path), ("depth", depth.ToString(System.Globalization.CultureInfo.InvariantCulture))), null, async, ct).ConfigureAwait(false);
        IReadOnlyList<SandboxFileEntry> entries = [.. response.Value.GetProperty("entries").EnumerateArray().Select(Entry)];
        return Response.FromValue(entries, response.GetRawResponse());
    }

    private static SandboxFileEntry Entry(JsonElement e) => new(
        e.GetProperty("name").GetString()!, e.GetProperty("type").GetString()!, e.GetProperty("path").GetString()!, e.TryGetProperty("size", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt64() : 0)
    {
        ModifiedAt = e.TryGetProperty("modifiedAt", out var m) && m.ValueKind == JsonValueKind.String ? m.GetDateTimeOffset() : null,
    };

    private RunRequest WithDefaults(RunRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request with
        {
            Strategy = request.Strategy == RoutingStrategy.Balanced && _options.DefaultStrategy is { } s ? s : request.Strategy,
            SecurityTier = request.SecurityTier == SecurityTier.Basic && _options.DefaultSecurityTier is { } t ? t : request.SecurityTier,
        };
    }

    private SandboxCreateRequest WithDefaults(SandboxCreateRequest request) => request with
    {
        Strategy = request.Strategy == RoutingStrategy.Balanced && _options.DefaultStrategy is { } s ? s : request.Strategy,
        SecurityTier = request.SecurityTier == SecurityTier.Basic && _options.DefaultSecurityTier is { } t ? t : request.SecurityTier,
    };

    private HttpMessage Create(RequestMethod method, string pathAndQuery)
    {
        var message = _pipeline.CreateMessage();
        message.Request.Method = method;
        message.Request.Uri.Reset(new Uri(new Uri(Endpoint.AbsoluteUri.TrimEnd('/') + "/"), pathAndQuery));
        message.Request.Headers.SetValue("Accept", "application/json");
        return message;
    }

    private HttpMessage StreamMessage(RequestMethod method, string path, object? body, string? lastEventId)
    {
        var message = Create(method, path);
        message.Request.Headers.SetValue("Accept", "text/event-stream");
        if (lastEventId is not null)
        {
            message.Request.Headers.SetValue("Last-Event-ID", lastEventId);
        }

        if (body is not null)
        {
            message.Request.Headers.SetValue("Content-Type", "application/json");
            message.Request.Content = RequestContent.Create(JsonSerializer.SerializeToUtf8Bytes(body, body.GetType(), SandstormJson.Options));
        }

        message.BufferResponse = false;
        message.NetworkTimeout = Timeout.InfiniteTimeSpan;
        return message;
    }

    private async ValueTask<Response> SendAsync(HttpMessage message, bool async, CancellationToken ct)
    {
        if (async)
        {
            await _pipeline.SendAsync(message, ct).ConfigureAwait(false);
        }
        else
        {
            _pipeline.Send(message, ct);
        }

        if (message.Response.IsError)
        {
            if (!message.BufferResponse && message.Response.ContentStream is { } stream)
            {
                // An error body of a streamed request: read it so the problem's type reaches the exception.
                var buffer = new MemoryStream();
                if (async)
                {
                    await stream.CopyToAsync(buffer, ct).ConfigureAwait(false);
                }
                else
                {
                    stream.CopyTo(buffer);
                }

                buffer.Position = 0;
                message.Response.ContentStream = buffer;
            }

            throw new RequestFailedException(message.Response, null, ProblemDetailsParser.Instance);
        }

        return message.Response;
    }

    private async ValueTask<Response<T>> SendJsonAsync<T>(RequestMethod method, string pathAndQuery, object? body, bool async, CancellationToken ct)
    {
        using var message = Create(method, pathAndQuery);
        if (body is not null)
        {
            message.Request.Headers.SetValue("Content-Type", "application/json");
            message.Request.Content = RequestContent.Create(JsonSerializer.SerializeToUtf8Bytes(body, body.GetType(), SandstormJson.Options));
        }

        var response = await SendAsync(message, async, ct).ConfigureAwait(false);
        var value = JsonSerializer.Deserialize<T>(response.Content.ToMemory().Span, SandstormJson.Options)!;
        return Response.FromValue(value, response);
    }

    private async ValueTask<Response<BinaryData>> SendBinaryAsync(RequestMethod method, string pathAndQuery, bool async, CancellationToken ct)
    {
        using var message = Create(method, pathAndQuery);
        message.Request.Headers.SetValue("Accept", "*/*");
        var response = await SendAsync(message, async, ct).ConfigureAwait(false);
        return Response.FromValue(response.Content, response);
    }

    private static string Escape(string value) => Uri.EscapeDataString(value ?? throw new ArgumentNullException(nameof(value)));

    private static string Query(params (string Name, string? Value)[] pairs)
    {
        var parts = pairs.Where(p => p.Value is not null).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}").ToList();
        return parts.Count == 0 ? "" : "?" + string.Join('&', parts);
    }

    /// <summary>Gathers a command's output until its end event.</summary>
    private sealed class Collector
    {
        private readonly StringBuilder _stdout = new();
        private readonly StringBuilder _stderr = new();
        private string? _commandId;
        private CommandEvent? _end;

        public void Add(CommandEvent e)
        {
            _commandId ??= e.CommandId;
            switch (e.Kind)
            {
                case CommandEventKind.Stdout:
                    _stdout.Append(e.Data);
                    break;
                case CommandEventKind.Stderr:
                    _stderr.Append(e.Data);
                    break;
                case CommandEventKind.End:
                    _end = e;
                    break;
            }
        }

        public Response<CommandResult> Result()
        {
            var end = _end ?? throw new RequestFailedException(0, "the command's event stream ended before the command did", "stream-ended", null);
            return Response.FromValue(new CommandResult(_commandId ?? "", end.Status ?? "exited", end.ExitCode, _stdout.ToString(), _stderr.ToString(), end.Error), new NoResponse());
        }
    }
}
