using Sandstorm.Api;
using Sandstorm.Local;
using Sandstorm.Orchestrations;
using Sandstorm.Providers;
using Sandstorm.Runtimes;
using Sandstorm.Storage;

var options = LocalOptions.Parse(args);
using var azurite = options.Storage is null ? LocalAzurite.Start(options.StateDirectory) : null;
var storage = options.Storage ?? azurite!.ConnectionString;

var builder = WebApplication.CreateSlimBuilder(args);
builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenOn(options.Urls));
builder.Configuration["ConnectionStrings:Storage"] = storage;
builder.Services.AddSingleton(options);
builder.Services.AddSandstormStorage(builder.Configuration);
builder.Services.AddSingleton<ISandboxRuntime>(new ProcessRuntime(new RuntimeOptions()));
builder.Services.AddSandstormLocalProvider();
builder.Services.AddSandstormOrchestrations();
builder.Services.AddSandstormApi();
builder.Services.AddHostedService<DevApiKey>();
builder.AddSandstormDurable(options, storage);

var app = builder.Build();
app.MapSandstormApi();
app.MapSandstormDurable(options);
app.Run();
