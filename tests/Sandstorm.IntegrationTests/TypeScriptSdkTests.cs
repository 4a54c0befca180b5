using System.Diagnostics;
using Xunit.Abstractions;

namespace Sandstorm.IntegrationTests;

/// <summary>
/// The TypeScript SDK (<c>sdks/typescript</c>) built with <c>tsc</c> and its tests run by node's test runner against the
/// shared local host, with a tenant's key (and another tenant's, for the 404 checks) in the environment.
/// </summary>
[Collection(LocalHostCollection.Name)]
public sealed class TypeScriptSdkTests(LocalHostFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task NodeTests_AgainstTheLocalHost_AllPass()
    {
        var sdk = Path.Combine(RepositoryRoot(), "sdks", "typescript");
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString, allowUnisolated: false);
        var (_, otherKey) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString, allowUnisolated: false);

        var build = await RunAsync("tsc", sdk, new Dictionary<string, string>(), "-p", ".");
        Assert.True(build.ExitCode == 0, $"tsc failed:\n{build.Output}");

        var environment = new Dictionary<string, string>
        {
            ["SANDSTORM_BASE_URL"] = fixture.Host.Url,
            ["SANDSTORM_API_KEY"] = key,
            ["SANDSTORM_OTHER_API_KEY"] = otherKey,
        };
        var tests = await RunAsync("node", sdk, environment, "--test", "--test-reporter=spec", "test/");
        output.WriteLine(tests.Output);
        Assert.True(tests.ExitCode == 0, $"node --test failed ({tests.ExitCode}):\n{tests.Output}");
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, string directory, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = directory, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment)
        {
            psi.Environment[name] = value;
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} did not finish in 5 minutes:\n{await stdout}\n{await stderr}");
        }

        return (process.ExitCode, $"{await stdout}\n{await stderr}");
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "sdks", "typescript", "package.json")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("sdks/typescript not found above the test's output");
    }
}
