using Sandstorm.Edge.Commands;

// Ctrl+C cancels the running command, whose cleanup then removes the sandbox it was running.
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

return await EdgeCli.RunAsync(args, EdgeContext.CreateDefault(), cancel.Token);
