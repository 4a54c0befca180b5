using Azure.Core;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Market;
using Sandstorm.Routing.Reoptimization;
using Sandstorm.Routing.Storage;

namespace Sandstorm.Routing;

/// <summary>Registers the router, its model store and the re-optimisation job.</summary>
public static class RoutingServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="IRunRouter"/> = <see cref="LightGbmRouter"/> (deciding on the prior until a model is promoted),
    /// <see cref="IModelStore"/> (Blob container <c>models</c> when <c>Routing:ModelStoreServiceUri</c> or
    /// <c>Routing:ModelStoreConnectionString</c> is set, else over the registered <see cref="BlobServiceClient"/>, else in memory), <see cref="RoutingModelHolder"/>,
    /// <see cref="RoutingMarketState"/>, <see cref="ReoptimizationJob"/>, <see cref="IRoutingLearner"/> (the router itself), and
    /// the operator's sheets: <see cref="IPriceFeed"/> = <see cref="PriceSheetFeed"/>, <see cref="GridIntensityFeed"/> and the
    /// <see cref="MarketFeedRefresher"/> that applies them. The host registers an <see cref="IRoutingObservationSource"/> and
    /// may register an <see cref="IRoutingMarketSource"/>.
    /// </summary>
    public static IServiceCollection AddSandstormRouting(this IServiceCollection services, IConfiguration configuration)
    {
        var options = new RoutingOptions();
        configuration.GetSection(RoutingOptions.Section).Bind(options);
        Validate(options);
        services.TryAddSingleton(options);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IExplorationRandom>(_ => new SeededExplorationRandom(options.Seed ?? Environment.TickCount));
        services.TryAddSingleton<IModelStore>(sp => CreateStore(options, sp));
        services.TryAddSingleton(sp => new RoutingModelHolder(sp.GetRequiredService<IModelStore>(), new RoutingCalibration(options)));
        services.TryAddSingleton<RoutingMarketState>();
        services.TryAddSingleton(sp => new LightGbmRouter(
            sp.GetRequiredService<RoutingModelHolder>(), options, sp.GetRequiredService<IExplorationRandom>(), sp.GetRequiredService<RoutingMarketState>()));
        services.TryAddSingleton<IRunRouter>(sp => sp.GetRequiredService<LightGbmRouter>());
        services.TryAddSingleton<IRoutingLearner>(sp => sp.GetRequiredService<LightGbmRouter>());
        var sheetClient = options.PriceSheetSource?.StartsWith("https://", StringComparison.OrdinalIgnoreCase) == true
            || options.GridIntensitySource?.StartsWith("https://", StringComparison.OrdinalIgnoreCase) == true
            ? new HttpClient { Timeout = TimeSpan.FromSeconds(30) }
            : null;
        services.TryAddSingleton(_ => new PriceSheetFeed(options, sheetClient));
        services.TryAddSingleton<IPriceFeed>(sp => sp.GetRequiredService<PriceSheetFeed>());
        services.TryAddSingleton(_ => new GridIntensityFeed(options, sheetClient));
        services.TryAddSingleton<MarketFeedRefresher>();
        services.AddHostedService(sp => sp.GetRequiredService<MarketFeedRefresher>());
        services.TryAddSingleton(sp => new ReoptimizationJob(
            sp.GetRequiredService<IRoutingObservationSource>(),
            sp.GetRequiredService<IModelStore>(),
            sp.GetRequiredService<RoutingModelHolder>(),
            sp.GetRequiredService<RoutingMarketState>(),
            options,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetService<IPriceFeed>(),
            sp.GetService<IRoutingMarketSource>()));
        return services;
    }

    private static IModelStore CreateStore(RoutingOptions options, IServiceProvider services)
    {
        if (!string.IsNullOrWhiteSpace(options.ModelStoreConnectionString))
        {
            return new AzureBlobModelStore(new BlobContainerClient(options.ModelStoreConnectionString, options.ModelContainer));
        }

        if (!string.IsNullOrWhiteSpace(options.ModelStoreServiceUri))
        {
            // Identity, not keys: the host's credential (the managed identity needs Storage Blob Data Contributor on the account).
            var service = new BlobServiceClient(new Uri(options.ModelStoreServiceUri), services.GetRequiredService<TokenCredential>());
            return new AzureBlobModelStore(service.GetBlobContainerClient(options.ModelContainer));
        }

        // The host's storage account (Azurite locally, the app's account with its managed identity in Azure).
        return services.GetService<BlobServiceClient>() is { } registered
            ? new AzureBlobModelStore(registered.GetBlobContainerClient(options.ModelContainer))
            : new InMemoryModelStore();
    }

    private static void Validate(RoutingOptions o)
    {
        if (o.ExplorationRate is < 0 or > 0.5)
        {
            throw new InvalidOperationException($"{RoutingOptions.Section}:ExplorationRate must be in [0, 0.5], was {o.ExplorationRate}");
        }

        if (o.HoldoutFraction is <= 0 or >= 1)
        {
            throw new InvalidOperationException($"{RoutingOptions.Section}:HoldoutFraction must be in (0, 1), was {o.HoldoutFraction}");
        }

        if (o.FeedRefreshInterval < TimeSpan.FromSeconds(1))
        {
            throw new InvalidOperationException($"{RoutingOptions.Section}:FeedRefreshInterval must be at least 1 s");
        }

        if (o.MinTrainingObservations < 10)
        {
            throw new InvalidOperationException($"{RoutingOptions.Section}:MinTrainingObservations must be at least 10");
        }
    }
}
