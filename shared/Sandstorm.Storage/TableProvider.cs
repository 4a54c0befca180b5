using System.Collections.Concurrent;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;

namespace Sandstorm.Storage;

/// <summary>Hands out table clients, creating each table once per process.</summary>
public sealed class TableProvider(TableServiceClient service, IOptions<StorageOptions> options)
{
    private readonly ConcurrentDictionary<string, Lazy<Task<TableClient>>> _tables = new();

    public Task<TableClient> GetAsync(string name) =>
        _tables.GetOrAdd(name, n => new Lazy<Task<TableClient>>(async () =>
        {
            var client = service.GetTableClient(options.Value.TableName(n));
            await client.CreateIfNotExistsAsync();
            return client;
        })).Value;
}
