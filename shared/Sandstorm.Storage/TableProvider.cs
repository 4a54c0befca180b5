using System.Collections.Concurrent;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;

namespace Sandstorm.Storage;

/// <summary>Hands out table clients, creating each table once per process (again after a failed attempt).</summary>
public sealed class TableProvider(TableServiceClient service, IOptions<StorageOptions> options)
{
    private readonly ConcurrentDictionary<string, CreateOnce<TableClient>> _tables = new();

    public Task<TableClient> GetAsync(string name) =>
        _tables.GetOrAdd(name, n => new CreateOnce<TableClient>(async () =>
        {
            var client = service.GetTableClient(options.Value.TableName(n));
            await client.CreateIfNotExistsAsync();
            return client;
        })).GetAsync();
}
