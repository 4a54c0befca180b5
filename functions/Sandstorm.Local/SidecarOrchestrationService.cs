using System.Reflection;
using DurableTask.Core;
using DurableTask.Core.History;

namespace Sandstorm.Local;

/// <summary>
/// Sits between the Durable Task gRPC sidecar and the orchestration service it drives, for two mismatches between them:
/// <list type="bullet">
/// <item>Work-item limits: the in-memory service reports one per core, which makes the sidecar pause fetching and
/// serialises runs; this reports a higher limit.</item>
/// <item>What the sidecar hands to <c>CompleteTaskOrchestrationWorkItemAsync</c> when an orchestrator starts a
/// sub-orchestration, which the DTFx Azure Storage provider cannot store: the history gets the sidecar's own subclass of
/// <see cref="SubOrchestrationInstanceCreatedEvent"/>, which lacks <c>[DataContract]</c>, so the history table's
/// converter writes none of its properties (not even <c>EventType</c>) and the parent's next replay fails; and the child's
/// <see cref="ExecutionStartedEvent.Tags"/> is a protobuf map, which the queue message serialiser writes with its type name
/// and cannot read back. Both are replaced by the plain DTFx types before the service sees them.</item>
/// </list>
/// Every other member goes to the service unchanged.
/// </summary>
public class SidecarOrchestrationService : DispatchProxy
{
    private IOrchestrationService _inner = null!;
    private int _minWorkItems;

    public static IOrchestrationService Wrap(IOrchestrationService inner, int maxWorkItems)
    {
        var proxy = Create<IOrchestrationService, SidecarOrchestrationService>();
        var self = (SidecarOrchestrationService)(object)proxy;
        self._inner = inner;
        self._minWorkItems = maxWorkItems;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        switch (targetMethod?.Name)
        {
            // Raised to at least the host's figure, never lowered.
            case "get_" + nameof(IOrchestrationService.MaxConcurrentTaskOrchestrationWorkItems):
                return Math.Max(_minWorkItems, _inner.MaxConcurrentTaskOrchestrationWorkItems);
            case "get_" + nameof(IOrchestrationService.MaxConcurrentTaskActivityWorkItems):
                return Math.Max(_minWorkItems, _inner.MaxConcurrentTaskActivityWorkItems);
            case nameof(IOrchestrationService.CompleteTaskOrchestrationWorkItemAsync):
                MakeStorable(args!);
                break;
        }

        return Forward(targetMethod!, args);
    }

    /// <summary>Arguments: work item, new runtime state, activity, orchestrator and timer messages, continued-as-new message, state.</summary>
    private static void MakeStorable(object?[] args)
    {
        if (args[1] is OrchestrationRuntimeState state)
        {
            ReplaceSubOrchestrationEvents(state);
            PlainTags(state.ExecutionStartedEvent);
        }

        for (var i = 2; i <= 4; i++)
        {
            foreach (var message in args[i] as IEnumerable<TaskMessage> ?? [])
            {
                PlainTags(message.Event as ExecutionStartedEvent);
            }
        }

        PlainTags((args[5] as TaskMessage)?.Event as ExecutionStartedEvent);
        if (args[6] is OrchestrationState { Tags: { } tags } status && tags is not Dictionary<string, string>)
        {
            status.Tags = new Dictionary<string, string>(tags);
        }
    }

    // Only this episode's new events can be the sidecar's subclass (history read back from storage is plain), and each
    // is also in the full list the service keeps for the session: replace it in both.
    private static void ReplaceSubOrchestrationEvents(OrchestrationRuntimeState state)
    {
        for (var i = 0; i < state.NewEvents.Count; i++)
        {
            if (state.NewEvents[i] is SubOrchestrationInstanceCreatedEvent created && created.GetType() != typeof(SubOrchestrationInstanceCreatedEvent))
            {
                var plain = new SubOrchestrationInstanceCreatedEvent(created.EventId)
                {
                    Name = created.Name,
                    Version = created.Version,
                    InstanceId = created.InstanceId,
                    Input = created.Input,
                    Timestamp = created.Timestamp,
                    IsPlayed = created.IsPlayed,
                };
                state.NewEvents[i] = plain;
                for (var j = state.Events.Count - 1; j >= 0; j--)
                {
                    if (ReferenceEquals(state.Events[j], created))
                    {
                        state.Events[j] = plain;
                        break;
                    }
                }
            }
        }
    }

    private static void PlainTags(ExecutionStartedEvent? started)
    {
        if (started?.Tags is { } tags and not Dictionary<string, string>)
        {
            started.Tags = new Dictionary<string, string>(tags);
        }
    }

    private object? Forward(MethodInfo method, object?[]? args)
    {
        try
        {
            return method.Invoke(_inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }
}
