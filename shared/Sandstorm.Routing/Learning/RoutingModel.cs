using System.IO.Compression;
using System.Text.Json;
using Microsoft.Extensions.ObjectPool;
using Microsoft.ML;
using Microsoft.ML.Data;
using Sandstorm.Core;

namespace Sandstorm.Routing.Learning;

/// <summary>One row as both LightGBM heads see it.</summary>
public sealed class FeatureRow
{
    [VectorType(RoutingFeatures.Count)]
    public float[] Features { get; set; } = new float[RoutingFeatures.Count];

    public float Label { get; set; }
}

/// <summary>A head's output.</summary>
public sealed class ScoreRow
{
    public float Score { get; set; }
}

/// <summary>
/// The two trained heads — cost as log billed seconds (times the live price per second gives USD, so a price change needs
/// no retraining) and latency as log milliseconds — with their metadata. Scoring goes through pooled prediction engines:
/// one PredictionEngine shared between threads returns wrong answers without failing.
/// </summary>
public sealed class RoutingModel
{
    private const string CostEntry = "cost.zip";
    private const string LatencyEntry = "latency.zip";
    private const string MetadataEntry = "metadata.json";

    private readonly MLContext _ml;
    private readonly ITransformer _cost;
    private readonly ITransformer _latency;
    private readonly DataViewSchema _schema;
    private readonly ObjectPool<PredictionEngine<FeatureRow, ScoreRow>> _costEngines;
    private readonly ObjectPool<PredictionEngine<FeatureRow, ScoreRow>> _latencyEngines;

    internal RoutingModel(MLContext ml, ITransformer cost, ITransformer latency, DataViewSchema schema, ModelMetadata metadata)
    {
        _ml = ml;
        _cost = cost;
        _latency = latency;
        _schema = schema;
        Metadata = metadata;
        var provider = new DefaultObjectPoolProvider { MaximumRetained = Math.Max(4, Environment.ProcessorCount * 2) };
        _costEngines = provider.Create(new EnginePolicy(ml, cost));
        _latencyEngines = provider.Create(new EnginePolicy(ml, latency));
    }

    public ModelMetadata Metadata { get; }

    /// <summary>The same heads under other metadata (a refit keeps the holdout's metrics).</summary>
    public RoutingModel WithMetadata(ModelMetadata metadata) => new(_ml, _cost, _latency, _schema, metadata);

    /// <summary>Raw head outputs (log billed seconds, log latency ms) for each feature row; safe to call from many threads.</summary>
    public void Predict(IReadOnlyList<float[]> rows, Span<double> logBilledSeconds, Span<double> logLatencyMs)
    {
        var cost = _costEngines.Get();
        var latency = _latencyEngines.Get();
        try
        {
            var input = new FeatureRow();
            var output = new ScoreRow();
            for (var i = 0; i < rows.Count; i++)
            {
                input.Features = rows[i];
                cost.Predict(input, ref output);
                logBilledSeconds[i] = output.Score;
                latency.Predict(input, ref output);
                logLatencyMs[i] = output.Score;
            }
        }
        finally
        {
            _costEngines.Return(cost);
            _latencyEngines.Return(latency);
        }
    }

    /// <summary>Batch scoring through the data pipeline (evaluation over a holdout; no engines involved).</summary>
    public (double[] LogBilledSeconds, double[] LogLatencyMs) PredictBatch(IReadOnlyList<float[]> rows)
    {
        var data = _ml.Data.LoadFromEnumerable(rows.Select(r => new FeatureRow { Features = r }));
        return (Scores(_cost.Transform(data)), Scores(_latency.Transform(data)));
    }

    private double[] Scores(IDataView scored) =>
        _ml.Data.CreateEnumerable<ScoreRow>(scored, reuseRowObject: false).Select(s => (double)s.Score).ToArray();

    /// <summary>
    /// Mixes a head's output with the prior by how often the model saw this candidate: weight n / (n + k).
    /// Trees put an unseen candidate in some other candidate's leaves; the prior is the better guess until it has data.
    /// </summary>
    public static double Blend(double model, double prior, int observations, int priorWeight) =>
        priorWeight <= 0 ? model : ((observations * model) + (priorWeight * prior)) / (observations + priorWeight);

    /// <summary>Serialises both heads and the metadata into one blob.</summary>
    public byte[] ToBytes()
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            Write(zip, CostEntry, s => _ml.Model.Save(_cost, _schema, s));
            Write(zip, LatencyEntry, s => _ml.Model.Save(_latency, _schema, s));
            Write(zip, MetadataEntry, s => JsonSerializer.Serialize(s, Metadata, SandstormJson.Options));
        }

        return buffer.ToArray();
    }

    /// <summary>Loads a blob written by <see cref="ToBytes"/>.</summary>
    public static RoutingModel FromBytes(byte[] blob)
    {
        using var zip = new ZipArchive(new MemoryStream(blob), ZipArchiveMode.Read);
        var metadata = JsonSerializer.Deserialize<ModelMetadata>(Read(zip, MetadataEntry), SandstormJson.Options)
            ?? throw new InvalidDataException("model blob has no metadata");
        if (metadata.FeatureSchema != RoutingFeatures.SchemaVersion)
        {
            throw new InvalidDataException($"model {metadata.Version} uses feature schema {metadata.FeatureSchema}, this build scores {RoutingFeatures.SchemaVersion}");
        }

        var ml = new MLContext(seed: 0);
        var cost = ml.Model.Load(new MemoryStream(Read(zip, CostEntry)), out var schema);
        var latency = ml.Model.Load(new MemoryStream(Read(zip, LatencyEntry)), out _);
        return new RoutingModel(ml, cost, latency, schema, metadata);
    }

    private static void Write(ZipArchive zip, string name, Action<Stream> write)
    {
        using var s = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
        write(s);
    }

    private static byte[] Read(ZipArchive zip, string name)
    {
        var entry = zip.GetEntry(name) ?? throw new InvalidDataException($"model blob lacks {name}");
        using var s = entry.Open();
        using var copy = new MemoryStream();
        s.CopyTo(copy);
        return copy.ToArray();
    }

    private sealed class EnginePolicy(MLContext ml, ITransformer model) : PooledObjectPolicy<PredictionEngine<FeatureRow, ScoreRow>>
    {
        private readonly Lock _gate = new();

        public override PredictionEngine<FeatureRow, ScoreRow> Create()
        {
            // Creating engines is cheap but touches the shared context; serialise it.
            lock (_gate)
            {
                return ml.Model.CreatePredictionEngine<FeatureRow, ScoreRow>(model);
            }
        }

        public override bool Return(PredictionEngine<FeatureRow, ScoreRow> obj) => true;
    }
}
