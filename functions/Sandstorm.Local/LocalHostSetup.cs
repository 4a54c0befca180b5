using Sandstorm.Api;
using Sandstorm.Providers.Local;

namespace Sandstorm.Local;

/// <summary>What makes the local host itself: its listener, its state directory, its durable engine and its development tenant.</summary>
public static class LocalHostSetup
{
    /// <summary>The local host's profile: tenant code runs on this machine (bwrap, gVisor, and a plain process where allowed).</summary>
    public static HostProfile Profile { get; } = HostProfile.Local((services, configuration) => services.AddSandstormLocalExecution(configuration));

    public static WebApplicationBuilder AddLocalHost(this WebApplicationBuilder builder, LocalOptions options, string storage)
    {
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenOn(options.Urls));
        builder.Configuration["ConnectionStrings:Storage"] = storage;
        builder.Configuration["Sandstorm:Signing:KeyPath"] ??= Path.Combine(options.StateDirectory, "signing-key.pem");
        // The developer's own machine: trusted code may run as a plain process (each tenant still opts in).
        builder.Configuration[$"{LocalExecutionOptions.Section}:AllowUnisolated"] ??= "true";
        builder.Services.AddSingleton(options);
        builder.Services.AddHostedService<DevApiKey>();
        builder.AddSandstormDurable(options, storage);
        return builder;
    }
}
