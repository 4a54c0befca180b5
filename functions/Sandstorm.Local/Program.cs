using Sandstorm.Api;
using Sandstorm.Api.Batches;
using Sandstorm.Api.Edge;
using Sandstorm.Local;
using Sandstorm.Orchestrations;
using Sandstorm.Providers;
using Sandstorm.Providers.Cloud;
using Sandstorm.Routing;
using Sandstorm.Runtimes;
using Sandstorm.Security;
using Sandstorm.Storage;
using Sandstorm.Telemetry;

var options = LocalOptions.Parse(args);
using var azurite = options.Storage is null ? LocalAzurite.Start(options.StateDirectory) : null;
var storage = options.Storage ?? azurite!.ConnectionString;

var builder = WebApplication.CreateSlimBuilder(args);
builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenOn(options.Urls));
builder.Configuration["ConnectionStrings:Storage"] = storage;
builder.Services.AddSingleton(options);
builder.Services.AddSandstormStorage(builder.Configuration);
builder.Configuration["Sandstorm:Signing:KeyPath"] ??= Path.Combine(options.StateDirectory, "signing-key.pem");
builder.Services.AddSandstormSecurity(builder.Configuration);
builder.Services.AddSandstormRuntimes();
builder.Services.AddSandstormCloudProviders(builder.Configuration);
builder.Services.AddSandstormLocalProvider();
// Before the orchestrations, which fall back to the rule-based router only if no router is registered.
builder.Services.AddSandstormRouting(builder.Configuration);
builder.Services.AddSandstormTelemetry(builder.Configuration);
builder.Services.AddSandstormEdge(builder.Configuration).AddSandstormEdgeSweeper();
builder.Services.AddSandstormOrchestrations();
builder.Services.AddSandstormApi();
builder.Services.AddSandstormBatches(builder.Configuration, listen: true);
builder.Services.AddHostedService<DevApiKey>();
builder.Services.AddHostedService<ReoptimizationService>();
builder.AddSandstormDurable(options, storage);

var app = builder.Build();
app.MapSandstormApi();
app.MapSandstormDurable(options);
app.Run();
