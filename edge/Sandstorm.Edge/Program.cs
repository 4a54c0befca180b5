using System.Runtime.InteropServices;
using Sandstorm.Edge.Commands;

// Ctrl+C and SIGTERM cancel the running command, whose cleanup then removes the sandbox it was running
// (start: stops polling, lets running jobs finish within the grace period, flushes the outbox).
using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    cancel.Cancel();
});

return await EdgeCli.RunAsync(args, EdgeContext.CreateDefault(), cancel.Token);
