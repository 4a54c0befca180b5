using Sandstorm.Api;
using Sandstorm.Local;

var options = LocalOptions.Parse(args);
using var azurite = options.Storage is null ? LocalAzurite.Start(options.StateDirectory) : null;

var builder = WebApplication.CreateSlimBuilder(args);
builder.AddLocalHost(options, options.Storage ?? azurite!.ConnectionString);
builder.Services.AddSandstormControlPlane(builder.Configuration, LocalHostSetup.Profile);

var app = builder.Build();
app.UseStatusProblems();
app.MapSandstormApi();
app.MapSandstormDurable();
app.Run();
