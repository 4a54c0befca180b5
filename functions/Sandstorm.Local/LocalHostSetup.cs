using Sandstorm.Api;
using Sandstorm.Orchestrations;
using Sandstorm.Providers.Local;

namespace Sandstorm.Local;

/// <summary>What makes the local host itself: its listener, its state directory, its durable engine and its development tenant.</summary>
public static class LocalHostSetup
{
    /// <summary>The local host's profile: tenant code runs on this machine (bwrap, gVisor, and a plain process where allowed).</summary>
    public static HostProfile Profile { get; } = HostProfile.Local((services, configuration) => services.AddSandstormLocalExecution(configuration));

    /// <param name="azuriteData">The embedded Azurite's data directory, when the host started one: its acknowledged runs are journaled.</param>
    public static WebApplicationBuilder AddLocalHost(this WebApplicationBuilder builder, LocalOptions options, string storage, string? azuriteData = null)
    {
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenOn(options.Urls));
        builder.Configuration["ConnectionStrings:Storage"] = storage;
        builder.Configuration["Sandstorm:Signing:KeyPath"] ??= Path.Combine(options.StateDirectory, "signing-key.pem");
        // The developer's own machine: trusted code may run as a plain process (each tenant still opts in).
        builder.Configuration[$"{LocalExecutionOptions.Section}:AllowUnisolated"] ??= "true";
        builder.Services.AddSingleton(options);
        builder.Services.AddHostedService<DevApiKey>();
        builder.AddSandstormDurable(options, storage);
        if (azuriteData is not null && options.Durable == "azurite")
        {
            // Before the control plane's own registrations, which keep the no-op journal only where none is registered.
            builder.Services.AddSingleton(new AzuriteData(azuriteData));
            builder.Services.AddSingleton(sp => new FileRunJournal(options.StateDirectory, sp.GetRequiredService<TimeProvider>()));
            builder.Services.AddSingleton<IRunJournal>(sp => sp.GetRequiredService<FileRunJournal>());
            builder.Services.AddSingleton<RunJournalReplay>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<RunJournalReplay>());
        }

        return builder;
    }

    /// <summary>Holds requests to runs until the intake journal's replay looked at every run it holds (a lost run is found, not a 404).</summary>
    public static WebApplication UseLocalHost(this WebApplication app)
    {
        if (app.Services.GetService<RunJournalReplay>() is { } replay)
        {
            app.Use(async (context, next) =>
            {
                if (context.Request.Path.StartsWithSegments("/v1/runs"))
                {
                    await replay.Replayed.WaitAsync(context.RequestAborted);
                }

                await next(context);
            });
        }

        return app;
    }
}
