using Sandstorm.Core.Contracts;
using Sandstorm.Storage;

namespace Sandstorm.Local;

/// <summary>
/// On first start, creates a development tenant and API key, prints it, and keeps it in <c>.sandstorm/dev-api-key</c>.
/// The development tenant opts in to isolation <c>none</c>.
/// </summary>
public sealed class DevApiKey(ApiKeyStore keys, TenantStore tenants, LocalOptions options, ILogger<DevApiKey> logger) : IHostedService
{
    public const string TenantId = "dev";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        LocalState.CreatePrivateDirectory(options.StateDirectory);
        // The developer's own tenant on the developer's own machine opts in to isolation none (trusted code, fastest runs).
        var settings = await tenants.GetAsync(TenantId, cancellationToken);
        var wanted = settings with { AllowUnisolated = true, MaxSandboxes = options.DevMaxSandboxes ?? settings.MaxSandboxes };
        if (wanted != settings)
        {
            await tenants.SetAsync(TenantId, wanted, cancellationToken);
        }

        var path = Path.Combine(options.StateDirectory, "dev-api-key");
        if (File.Exists(path) && await keys.ExistsAsync(File.ReadAllText(path).Trim(), cancellationToken))
        {
            logger.LogInformation("Development API key in {Path}", path);
            return;
        }

        var key = await keys.CreateAsync(TenantId, "development", cancellationToken);
        // Created 0600: never readable by others, not even for a moment before a chmod.
        File.Delete(path);
        await using (var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            await file.WriteAsync(System.Text.Encoding.UTF8.GetBytes(key), cancellationToken);
        }

        Console.WriteLine($"Development API key (tenant '{TenantId}'): {key}  (saved to {path})");
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
