using Azure;

namespace Sandstorm.Client;

/// <summary>A submitted batch: complete once every item has settled or the batch was cancelled.</summary>
public class BatchOperation : Operation<BatchInfo>
{
    private readonly SandstormClient _client = null!;
    private Response _raw = null!;
    private BatchInfo? _value;

    /// <summary>For mocking.</summary>
    protected BatchOperation()
    {
        Id = "";
    }

    internal BatchOperation(SandstormClient client, string id, Response raw)
    {
        _client = client;
        Id = id;
        _raw = raw;
    }

    /// <summary>The batch id.</summary>
    public override string Id { get; }

    public override BatchInfo Value => _value is { IsDone: true } ? _value : throw new InvalidOperationException($"batch {Id} has not completed yet");

    public override bool HasCompleted => _value?.IsDone == true;

    public override bool HasValue => HasCompleted;

    /// <summary>The batch as last read (counts, cost), also before it completes.</summary>
    public virtual BatchInfo? Current => _value;

    public override Response GetRawResponse() => _raw;

    public override ValueTask<Response<BatchInfo>> WaitForCompletionAsync(CancellationToken cancellationToken = default) =>
        WaitForCompletionAsync(TimeSpan.FromMilliseconds(500), cancellationToken);

    public override async ValueTask<Response> UpdateStatusAsync(CancellationToken cancellationToken = default) => await UpdateAsync(true, cancellationToken).ConfigureAwait(false);

    public override Response UpdateStatus(CancellationToken cancellationToken = default) => UpdateAsync(false, cancellationToken).EnsureCompleted();

    private async ValueTask<Response> UpdateAsync(bool async, CancellationToken ct)
    {
        if (HasCompleted)
        {
            return _raw;
        }

        var response = await _client.GetBatchCoreAsync(Id, async, ct).ConfigureAwait(false);
        _value = response.Value;
        _raw = response.GetRawResponse();
        return _raw;
    }
}
