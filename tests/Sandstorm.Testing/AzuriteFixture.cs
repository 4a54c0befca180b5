using System.Diagnostics;
using Sandstorm.Storage;

namespace Sandstorm.Testing;

/// <summary>
/// Real Azurite for tests. One per test run: when <c>SANDSTORM_TEST_STORAGE</c> is set (the test script starts one
/// Azurite and exports it) every fixture uses it; otherwise the fixture starts its own, in memory, on free ports.
/// Tests isolate themselves by using unique table/container/hub names, never by a private Azurite.
/// </summary>
public sealed class AzuriteFixture : IAsyncDisposable, IDisposable
{
    public const string EnvironmentVariable = "SANDSTORM_TEST_STORAGE";

    private Process? _process;

    public AzuriteFixture()
    {
        var shared = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(shared))
        {
            ConnectionString = shared;
            return;
        }

        var (process, connectionString) = AzuriteProcess.Start(location: "", inMemory: true);
        _process = process;
        ConnectionString = connectionString;
    }

    /// <summary>Connection string of the Azurite this fixture uses.</summary>
    public string ConnectionString { get; }

    public void Dispose()
    {
        if (_process is { } p)
        {
            _process = null;
            AzuriteProcess.Stop(p);
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
