using Microsoft.Azure.Functions.Worker.Builder;
using Sandstorm.Api;
using Sandstorm.Api.Batches;
using Sandstorm.Api.Edge;
using Sandstorm.Orchestrations;
using Sandstorm.Providers;
using Sandstorm.Providers.Cloud;
using Sandstorm.Routing;
using Sandstorm.Runtimes;
using Sandstorm.Security;
using Sandstorm.Storage;
using Sandstorm.Telemetry;

namespace Sandstorm.Functions;

/// <summary>The Functions app's service registrations: the same as the local host's, minus the local engine.</summary>
public static class SandstormFunctionsSetup
{
    public static FunctionsApplicationBuilder AddSandstorm(this FunctionsApplicationBuilder builder)
    {
        builder.Services.AddSandstormStorage(builder.Configuration);
        builder.Services.AddSandstormSecurity(builder.Configuration);
        builder.Services.AddSandstormRuntimes();
        builder.Services.AddSandstormCloudProviders(builder.Configuration);
        builder.Services.AddSandstormLocalProvider();
        builder.Services.AddSandstormEdge(builder.Configuration);
        builder.Services.AddSandstormRouting(builder.Configuration);
        builder.Services.AddSandstormTelemetry(builder.Configuration);
        builder.Services.AddSandstormOrchestrations();
        builder.Services.AddSandstormApi();
        builder.Services.AddSandstormBatches(builder.Configuration, listen: false);
        return builder;
    }
}
