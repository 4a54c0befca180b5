using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Providers.Health;

namespace Sandstorm.Providers.Tests;

public sealed class RegistrationTests
{
    [Fact]
    public void AddSandstormCloudProviders_RegistersOnlyConfiguredProviders()
    {
        using var sp = ProviderHarness.Build(new Dictionary<string, string?>
        {
            ["Sandstorm:Providers:E2B:ApiKey"] = "e2b_key",
            ["Sandstorm:Providers:Daytona:ApiKey"] = "dtn_key",
            ["Sandstorm:Providers:Daytona:Enabled"] = "false",
            ["Sandstorm:Providers:Modal:TokenId"] = "ak-1",
        });

        var ids = sp.GetServices<ISandboxProvider>().Select(p => p.Capabilities.Provider).ToArray();

        // Daytona is disabled, Modal lacks its secret, ACA has no pool endpoint.
        Assert.Equal(["e2b"], ids);
        Assert.NotNull(sp.GetRequiredService<IProviderHealthSource>());
    }
}
