using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Orchestrations;
using Sandstorm.Orchestrations.Activities;
using Sandstorm.Orchestrations.Batches;
using Sandstorm.Orchestrations.Sandboxes;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Functions;

/// <summary>Orchestration and activity shims: the same code the local host registers through <see cref="SandstormTasks"/>.</summary>
public static class DurableFunctions
{
    [Function(nameof(SandboxRunOrchestrator))]
    public static Task<RunOutcome> SandboxRun([OrchestrationTrigger] TaskOrchestrationContext context) =>
        SandboxRunOrchestrator.RunAsync(context, context.GetInput<RunInput>()!);

    [Function(nameof(RouteActivity))]
    public static Task<RouteOutcome> Route([ActivityTrigger] RunTicket input, FunctionContext context) =>
        context.InstanceServices.GetRequiredService<RouteActivity>().ExecuteAsync(input, context.CancellationToken);

    [Function(nameof(ProvisionActivity))]
    public static Task<ProvisionOutcome> Provision([ActivityTrigger] ProvisionInput input, FunctionContext context) =>
        context.InstanceServices.GetRequiredService<ProvisionActivity>().ExecuteAsync(input, context.CancellationToken);

    [Function(nameof(ExecuteActivity))]
    public static Task<ExecuteOutcome> Execute([ActivityTrigger] ExecuteInput input, FunctionContext context) =>
        context.InstanceServices.GetRequiredService<ExecuteActivity>().ExecuteAsync(input, context.CancellationToken);

    [Function(nameof(MonitorActivity))]
    public static Task<MonitorOutcome> Monitor([ActivityTrigger] MonitorInput input, FunctionContext context) =>
        context.InstanceServices.GetRequiredService<MonitorActivity>().ExecuteAsync(input, context.CancellationToken);

    [Function(nameof(SettleActivity))]
    public static Task<RunOutcome> Settle([ActivityTrigger] SettleInput input, FunctionContext context) =>
        context.InstanceServices.GetRequiredService<SettleActivity>().ExecuteAsync(input, context.CancellationToken);

    [Function(nameof(BatchOrchestrator))]
    public static Task<BatchOutcome?> Batch([OrchestrationTrigger] TaskOrchestrationContext context) =>
        BatchOrchestrator.RunAsync(context, context.GetInput<BatchInput>()!);

    [Function(nameof(PrepareBatchChunkActivity))]
    public static Task<BatchChunk> PrepareBatchChunk([ActivityTrigger] BatchChunkInput input, FunctionContext context) =>
        context.InstanceServices.GetRequiredService<PrepareBatchChunkActivity>().ExecuteAsync(input, context.CancellationToken);

    [Function(nameof(WriteBatchResultsActivity))]
    public static async Task<bool> WriteBatchResults([ActivityTrigger] BatchResultsInput input, FunctionContext context)
    {
        await context.InstanceServices.GetRequiredService<WriteBatchResultsActivity>().ExecuteAsync(input, context.CancellationToken);
        return true;
    }

    [Function(nameof(FinishBatchActivity))]
    public static Task<string> FinishBatch([ActivityTrigger] FinishBatchInput input, FunctionContext context) =>
        context.InstanceServices.GetRequiredService<FinishBatchActivity>().ExecuteAsync(input, context.CancellationToken);

    [Function(nameof(JoinBatchLaneActivity))]
    public static Task<bool> JoinBatchLane([ActivityTrigger] BatchLaneInput input, FunctionContext context) =>
        context.InstanceServices.GetRequiredService<JoinBatchLaneActivity>().ExecuteAsync(input, context.CancellationToken);

    [Function(nameof(LeaveBatchLaneActivity))]
    public static Task<string?> LeaveBatchLane([ActivityTrigger] BatchLaneInput input, FunctionContext context) =>
        context.InstanceServices.GetRequiredService<LeaveBatchLaneActivity>().ExecuteAsync(input, context.CancellationToken);

    [Function(nameof(SandboxLifecycleOrchestrator))]
    public static Task<SandboxStatus> SandboxLifecycle([OrchestrationTrigger] TaskOrchestrationContext context) =>
        SandboxLifecycleOrchestrator.RunAsync(context, context.GetInput<SandboxLifecycleInput>()!);

    [Function(nameof(EndSandboxActivity))]
    public static Task<EndSandboxOutcome> EndSandbox([ActivityTrigger] EndSandboxInput input, FunctionContext context) =>
        context.InstanceServices.GetRequiredService<EndSandboxActivity>().ExecuteAsync(input, context.CancellationToken);
}
