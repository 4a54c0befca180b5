using Sandstorm.Cli;
using Sandstorm.Cli.Commands;

return args switch
{
    ["run", .. var rest] => await RunCommand.RunAsync(rest),
    ["batch", .. var rest] => await BatchCommand.RunAsync(rest),
    ["sandbox", .. var rest] => await SandboxCommand.RunAsync(rest),
    ["status", .. var rest] => await StatusCommand.RunAsync(rest),
    ["bootkit", .. var rest] => await BootKitCommand.RunAsync(rest),
    ["verify", .. var rest] => await VerifyCommand.RunAsync(rest),
    ["bench", "pipeline", .. var rest] => await BenchPipelineCommand.RunAsync(rest),
    ["bench", "routing", .. var rest] => await BenchRoutingCommand.RunAsync(rest),
    ["bench", "log", .. var rest] => await BenchLogCommand.RunAsync(rest),
    ["bench", "telemetry", .. var rest] => await BenchTelemetryCommand.RunAsync(rest),
    ["bench", "batch", .. var rest] => await BenchBatchCommand.RunAsync(rest),
    ["bench", "sandboxes", .. var rest] => await BenchSandboxesCommand.RunAsync(rest),
    ["--help" or "-h" or "help"] or [] => Usage.Print(0),
    _ => Usage.Print(2, $"unknown command: {string.Join(' ', args)}"),
};
