using Azure.Core;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sandstorm.Security.Provenance;
using Sandstorm.Security.Signing;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Security;

/// <summary>Registers provenance signing and the transparency log.</summary>
public static class SecurityServiceCollectionExtensions
{
    /// <summary>
    /// Adds <see cref="IProvenanceSigner"/> (<c>Sandstorm:Signing:Signer</c> = local | keyvault), <see cref="ITransparencyLog"/>
    /// and <see cref="IProvenanceService"/>. Storage clients registered before are used; otherwise they are created
    /// from <c>ConnectionStrings:Storage</c> (default: the development storage emulator).
    /// </summary>
    public static IServiceCollection AddSandstormSecurity(this IServiceCollection services, IConfiguration configuration)
    {
        var storage = configuration.GetConnectionString("Storage") ?? "UseDevelopmentStorage=true";
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(_ => new TableServiceClient(storage));
        services.TryAddSingleton(_ => new BlobServiceClient(storage));

        var signing = configuration.GetSection("Sandstorm:Signing");
        var signer = (signing["Signer"] ?? "local").Trim().ToLowerInvariant();
        switch (signer)
        {
            case "local":
                var path = signing["KeyPath"] is { Length: > 0 } configured ? configured : LocalSigner.DefaultPath;
                services.TryAddSingleton<IProvenanceSigner>(_ => new LocalSigner(path));
                break;
            case "keyvault":
                var vault = configuration["Sandstorm:KeyVault:Uri"];
                var keyName = signing["KeyName"];
                if (!Uri.TryCreate(vault, UriKind.Absolute, out var vaultUri) || vaultUri.Scheme != Uri.UriSchemeHttps || string.IsNullOrWhiteSpace(keyName))
                {
                    throw new InvalidOperationException("Sandstorm:Signing:Signer=keyvault needs Sandstorm:KeyVault:Uri (https) and Sandstorm:Signing:KeyName");
                }

                // Signs with the host's one credential (managed identity in Azure), registered by the composition.
                services.TryAddSingleton<IProvenanceSigner>(sp => new KeyVaultSigner(vaultUri, keyName, signing["KeyVersion"], sp.GetRequiredService<TokenCredential>()));
                break;
            default:
                throw new InvalidOperationException($"Sandstorm:Signing:Signer '{signer}' is not one of local, keyvault");
        }

        var logOptions = new TransparencyLogOptions
        {
            LogName = configuration["Sandstorm:Log:Name"] is { Length: > 0 } name ? name : new TransparencyLogOptions().LogName,
        };
        services.TryAddSingleton<ITransparencyLog>(sp => new TableTransparencyLog(
            sp.GetRequiredService<TableServiceClient>(),
            sp.GetRequiredService<IProvenanceSigner>(),
            sp.GetRequiredService<TimeProvider>(),
            Logger<TableTransparencyLog>(sp),
            logOptions));
        services.TryAddSingleton<IProvenanceService>(sp => new ProvenanceService(
            sp.GetRequiredService<BlobServiceClient>(),
            sp.GetRequiredService<IProvenanceSigner>(),
            sp.GetRequiredService<ITransparencyLog>(),
            Logger<ProvenanceService>(sp)));
        services.TryAddSingleton(sp => new Compliance.ComplianceReportService(
            sp.GetRequiredService<ITransparencyLog>(),
            sp.GetRequiredService<IProvenanceSigner>(),
            sp.GetRequiredService<BlobServiceClient>(),
            sp.GetRequiredService<TimeProvider>()));
        return services;
    }

    // Hosts always add logging; a bare container (tools, tests) still works without it.
    private static ILogger<T> Logger<T>(IServiceProvider services) =>
        services.GetService<ILoggerFactory>()?.CreateLogger<T>() ?? NullLogger<T>.Instance;
}
