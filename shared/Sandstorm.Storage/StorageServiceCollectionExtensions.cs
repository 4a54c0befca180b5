using Azure.Core;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Sandstorm.Storage;

/// <summary>Registers Sandstorm's stores over one storage account.</summary>
public static class StorageServiceCollectionExtensions
{
    /// <summary>
    /// Uses <c>ConnectionStrings:Storage</c> (Azurite, local) when set; otherwise identity-based access to the account
    /// named by <c>Sandstorm:Storage:AccountName</c> (Azure), with the registered <see cref="TokenCredential"/>.
    /// </summary>
    public static IServiceCollection AddSandstormStorage(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<StorageOptions>().Bind(configuration.GetSection(StorageOptions.Section));
        services.TryAddSingleton(TimeProvider.System);

        var connectionString = configuration.GetConnectionString("Storage");
        if (!string.IsNullOrWhiteSpace(connectionString))
        {
            services.TryAddSingleton(new TableServiceClient(connectionString));
            services.TryAddSingleton(new BlobServiceClient(connectionString));
            services.TryAddSingleton(new QueueServiceClient(connectionString, QueueOptions()));
        }
        else
        {
            var account = configuration["Sandstorm:Storage:AccountName"]
                ?? throw new InvalidOperationException("set ConnectionStrings:Storage or Sandstorm:Storage:AccountName");

            // Identity, not keys: the host's one credential (AddSandstormIdentity in the composition).
            static TokenCredential Credential(IServiceProvider sp) => sp.GetRequiredService<TokenCredential>();
            services.TryAddSingleton(sp => new TableServiceClient(new Uri($"https://{account}.table.core.windows.net"), Credential(sp)));
            services.TryAddSingleton(sp => new BlobServiceClient(new Uri($"https://{account}.blob.core.windows.net"), Credential(sp)));
            services.TryAddSingleton(sp => new QueueServiceClient(new Uri($"https://{account}.queue.core.windows.net"), Credential(sp), QueueOptions()));
        }

        services.TryAddSingleton<TableProvider>();
        services.TryAddSingleton<PayloadStore>();
        services.TryAddSingleton<RunStore>();
        services.TryAddSingleton<LedgerStore>();
        services.TryAddSingleton<ApiKeyStore>();
        services.TryAddSingleton<TenantStore>();
        services.TryAddSingleton<Sandboxes.SandboxStore>();
        services.TryAddSingleton<BatchStore>();
        services.TryAddSingleton<BatchLaneStore>();
        services.TryAddSingleton<Shield.ShieldStore>();
        return services;
    }

    /// <summary>Base64, as the Functions queue trigger expects; messages that are not Base64 go to the poison queue.</summary>
    private static QueueClientOptions QueueOptions()
    {
        var options = new QueueClientOptions { MessageEncoding = QueueMessageEncoding.Base64 };
        options.MessageDecodingFailed += QueuePoison.OnDecodingFailedAsync;
        return options;
    }
}
