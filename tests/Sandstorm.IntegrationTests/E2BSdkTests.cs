using Sandstorm.Testing;

namespace Sandstorm.IntegrationTests;

/// <summary>
/// The official <c>e2b</c> npm SDK, unchanged, against the real local host's E2B-compatible wire: its own test file
/// (<c>tests/e2b-sdk/e2b-sdk.test.mjs</c>, node's test runner) with <c>E2B_API_URL</c> and <c>E2B_SANDBOX_URL</c> at the host
/// and a tenant's Sandstorm key as <c>E2B_API_KEY</c>. The sandboxes are real (bwrap on this machine).
/// </summary>
[Collection(LocalHostCollection.Name)]
public sealed class E2BSdkTests(LocalHostFixture fixture)
{
    [Fact]
    public async Task OfficialE2BSdk_SandboxesCommandsFilesAndLifetime_WorkAgainstTheLocalHost()
    {
        var (_, key) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString, allowUnisolated: false);
        var (_, otherKey) = await Tenants.CreateAsync(fixture.Azurite.ConnectionString, allowUnisolated: false);
        var url = fixture.Host.Url.TrimEnd('/');

        var (exit, stdout, stderr) = await NodeScript.RunAsync(
            ["--test", "--test-reporter=spec", "--test-concurrency=1", "tests/e2b-sdk/e2b-sdk.test.mjs"],
            new Dictionary<string, string>
            {
                ["E2B_API_URL"] = url,
                ["E2B_SANDBOX_URL"] = url,
                ["E2B_API_KEY"] = key,
                ["SANDSTORM_OTHER_KEY"] = otherKey,
            },
            TimeSpan.FromMinutes(4));

        Console.WriteLine(stdout);
        Assert.True(exit == 0, $"the e2b SDK's tests failed (exit {exit}):\n{stdout}\n{stderr}\nhost log:\n{fixture.Host.Log}");
    }
}
