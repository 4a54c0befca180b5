using System.Diagnostics;
using Sandstorm.Storage;
using Sandstorm.Testing;

namespace Sandstorm.Security.Tests;

/// <summary>
/// Azurite for this test project: the shared one when <c>SANDSTORM_TEST_STORAGE</c> is set, else one started through
/// the shared <see cref="AzuriteProcess"/> on a fresh temporary location. The shared <see cref="AzuriteFixture"/> asks
/// for in-memory persistence together with a location, which Azurite 3.37 refuses; switch back to it once fixed.
/// </summary>
public sealed class LocalAzurite : IDisposable
{
    private readonly Process? _process;
    private readonly string? _location;

    public LocalAzurite()
    {
        var shared = Environment.GetEnvironmentVariable(AzuriteFixture.EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(shared))
        {
            ConnectionString = shared;
            return;
        }

        _location = Path.Combine(Path.GetTempPath(), "sandstorm-sec-azurite-" + Guid.NewGuid().ToString("N")[..8]);
        (_process, ConnectionString) = AzuriteProcess.Start(_location, inMemory: false);
    }

    public string ConnectionString { get; }

    public void Dispose()
    {
        if (_process is not null)
        {
            AzuriteProcess.Stop(_process);
        }

        if (_location is not null && Directory.Exists(_location))
        {
            Directory.Delete(_location, recursive: true);
        }
    }
}
