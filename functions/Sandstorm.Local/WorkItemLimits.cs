using System.Reflection;
using DurableTask.Core;

namespace Sandstorm.Local;

/// <summary>
/// Reports a higher work-item limit for an orchestration service whose own is fixed (the in-memory service says one per
/// core, which makes the sidecar pause fetching and serialises runs); every other member goes to the service unchanged.
/// </summary>
public class WorkItemLimits : DispatchProxy
{
    private IOrchestrationService _inner = null!;
    private int _max;

    public static IOrchestrationService Raise(IOrchestrationService inner, int max)
    {
        if (inner.MaxConcurrentTaskOrchestrationWorkItems >= max && inner.MaxConcurrentTaskActivityWorkItems >= max)
        {
            return inner;
        }

        var proxy = Create<IOrchestrationService, WorkItemLimits>();
        var limits = (WorkItemLimits)(object)proxy;
        limits._inner = inner;
        limits._max = max;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args) => targetMethod?.Name switch
    {
        "get_" + nameof(IOrchestrationService.MaxConcurrentTaskOrchestrationWorkItems) => _max,
        "get_" + nameof(IOrchestrationService.MaxConcurrentTaskActivityWorkItems) => _max,
        _ => Forward(targetMethod!, args),
    };

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
