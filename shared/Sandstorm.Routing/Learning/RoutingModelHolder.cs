using Sandstorm.Routing.Storage;

namespace Sandstorm.Routing.Learning;

/// <summary>The model decisions use now: loaded once from the store, swapped atomically on promotion.</summary>
public sealed class RoutingModelHolder(IModelStore store, RoutingCalibration calibration)
{
    /// <summary>A holder whose calibration uses the default settings.</summary>
    public RoutingModelHolder(IModelStore store)
        : this(store, new RoutingCalibration(new RoutingOptions()))
    {
    }


    private readonly SemaphoreSlim _loading = new(1, 1);
    private volatile RoutingModel? _current;
    private volatile bool _loaded;

    /// <summary>The current model, or null while none has been promoted (the router then uses the prior).</summary>
    public RoutingModel? Current => _current;

    /// <summary>Online corrections of the current model (or the prior), learnt from the runs since it was promoted.</summary>
    public RoutingCalibration Calibration => calibration;

    /// <summary>The current model, loading the promoted one from the store on first use.</summary>
    public async ValueTask<RoutingModel?> GetAsync(CancellationToken cancellationToken)
    {
        if (_loaded)
        {
            return _current;
        }

        await _loading.WaitAsync(cancellationToken);
        try
        {
            if (!_loaded)
            {
                var stored = await store.GetCurrentAsync(cancellationToken);
                _current ??= stored is null ? null : RoutingModel.FromBytes(stored.Content);
                _loaded = true;
            }
        }
        finally
        {
            _loading.Release();
        }

        return _current;
    }

    /// <summary>Makes <paramref name="model"/> the one decisions use (the store is written by the caller).</summary>
    public void Promote(RoutingModel model)
    {
        _current = model;
        _loaded = true;
        calibration.Reset();
    }
}
