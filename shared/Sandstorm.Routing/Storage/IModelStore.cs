using Sandstorm.Routing.Learning;
using Sandstorm.Routing.Reoptimization;

namespace Sandstorm.Routing.Storage;

/// <summary>A stored model: its metadata and the blob <see cref="RoutingModel.FromBytes"/> reads.</summary>
public sealed record StoredModel(ModelMetadata Metadata, byte[] Content);

/// <summary>Where routing models (with version, training window and metrics) and re-optimisation reports are kept.</summary>
public interface IModelStore
{
    /// <summary>The promoted model, or null before the first promotion.</summary>
    Task<StoredModel?> GetCurrentAsync(CancellationToken cancellationToken);

    /// <summary>Keeps a model by version; when <paramref name="promote"/> it becomes the current one.</summary>
    Task SaveAsync(StoredModel model, bool promote, CancellationToken cancellationToken);

    /// <summary>Keeps the report of one re-optimisation run.</summary>
    Task SaveReportAsync(ReoptimizationReport report, CancellationToken cancellationToken);

    /// <summary>The most recently saved report, or null before the first re-optimisation.</summary>
    Task<ReoptimizationReport?> GetLatestReportAsync(CancellationToken cancellationToken);
}

/// <summary>A process-local store (tests, the benchmark, a single local host).</summary>
public sealed class InMemoryModelStore : IModelStore
{
    private readonly Dictionary<string, StoredModel> _models = new(StringComparer.Ordinal);
    private readonly List<ReoptimizationReport> _reports = [];
    private readonly Lock _gate = new();
    private StoredModel? _current;

    public IReadOnlyList<ReoptimizationReport> Reports
    {
        get
        {
            lock (_gate)
            {
                return [.. _reports];
            }
        }
    }

    public IReadOnlyCollection<string> Versions
    {
        get
        {
            lock (_gate)
            {
                return [.. _models.Keys];
            }
        }
    }

    public Task<StoredModel?> GetCurrentAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_current);
        }
    }

    public Task SaveAsync(StoredModel model, bool promote, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _models[model.Metadata.Version] = model;
            if (promote)
            {
                _current = model;
            }
        }

        return Task.CompletedTask;
    }

    public Task SaveReportAsync(ReoptimizationReport report, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _reports.Add(report);
        }

        return Task.CompletedTask;
    }

    public Task<ReoptimizationReport?> GetLatestReportAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_reports.Count == 0 ? null : _reports[^1]);
        }
    }
}
