using Sandstorm.Api;
using Sandstorm.Local;

var options = LocalOptions.Parse(args);
using var azurite = options.Storage is null ? LocalAzurite.Start(options.StateDirectory) : null;

var builder = WebApplication.CreateSlimBuilder(args);
builder.AddLocalHost(options, options.Storage ?? azurite!.ConnectionString, azurite?.Location);
builder.Services.AddSandstormControlPlane(builder.Configuration, LocalHostSetup.Profile);

var app = builder.Build();
app.UseStatusProblems();
app.UseLocalHost();
app.MapSandstormApi();
app.MapSandstormDurable();
app.Run();
