using Azure;

namespace Sandstorm.Storage;

/// <summary>
/// Creates something (a table, a container, a queue) once per process. A success is kept; a failure is not, so one
/// transient error on first use — several processes creating the same table on a fresh account at once — does not break
/// that store for the rest of the process's life. Each attempt is retried twice on a storage error.
/// </summary>
public sealed class CreateOnce<T>(Func<Task<T>> create)
{
    private readonly Lock _gate = new();
    private Task<T>? _created;

    public Task<T> GetAsync()
    {
        lock (_gate)
        {
            if (_created is null || _created.IsFaulted || _created.IsCanceled)
            {
                _created = CreateAsync();
            }

            return _created;
        }
    }

    private async Task<T> CreateAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await create();
            }
            catch (RequestFailedException) when (attempt < 3)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt));
            }
        }
    }
}
