using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Api;

namespace Sandstorm.Functions;

/// <summary>The Functions app's services: the one control-plane composition, as the Azure Functions host.</summary>
public static class SandstormFunctionsSetup
{
    public static IServiceCollection AddSandstormFunctions(this IServiceCollection services, IConfiguration configuration) =>
        services.AddSandstormControlPlane(configuration, HostProfile.AzureFunctions);
}
