using Sandstorm.Storage;

namespace Sandstorm.Local;

/// <summary>On first start, creates a development tenant and API key, prints it, and keeps it in <c>.sandstorm/dev-api-key</c>.</summary>
public sealed class DevApiKey(ApiKeyStore keys, LocalOptions options, ILogger<DevApiKey> logger) : IHostedService
{
    public const string TenantId = "dev";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(options.StateDirectory);
        var path = Path.Combine(options.StateDirectory, "dev-api-key");
        if (File.Exists(path) && await keys.ExistsAsync(File.ReadAllText(path).Trim(), cancellationToken))
        {
            logger.LogInformation("Development API key in {Path}", path);
            return;
        }

        var key = await keys.CreateAsync(TenantId, "development", cancellationToken);
        await File.WriteAllTextAsync(path, key, cancellationToken);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Console.WriteLine($"Development API key (tenant '{TenantId}'): {key}  (saved to {path})");
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
