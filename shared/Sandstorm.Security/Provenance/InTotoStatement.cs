using System.Text.Json;
using System.Text.Json.Serialization;
using Sandstorm.Core;

namespace Sandstorm.Security.Provenance;

/// <summary>An in-toto Statement v1: what artefacts (by digest) the predicate speaks about.</summary>
public sealed record InTotoStatement
{
    /// <summary>The statement type URI of in-toto v1.</summary>
    public const string TypeV1 = "https://in-toto.io/Statement/v1";

    [JsonPropertyName("_type")]
    public string Type { get; init; } = TypeV1;

    [JsonPropertyName("subject")]
    public required IReadOnlyList<InTotoSubject> Subject { get; init; }

    [JsonPropertyName("predicateType")]
    public required string PredicateType { get; init; }

    /// <summary>A run's (<see cref="RunProvenancePredicate"/>) or a kept sandbox's (<see cref="SandboxProvenancePredicate"/>); parsed, a JSON element.</summary>
    [JsonPropertyName("predicate")]
    public required object Predicate { get; init; }

    /// <summary>The predicate as a run's.</summary>
    public RunProvenancePredicate RunPredicate() => As<RunProvenancePredicate>();

    /// <summary>The predicate as a kept sandbox's.</summary>
    public SandboxProvenancePredicate SandboxPredicate() => As<SandboxProvenancePredicate>();

    private T As<T>()
        where T : class =>
        Predicate as T ?? ((JsonElement)Predicate).Deserialize<T>(SandstormJson.Options)
            ?? throw new JsonException($"the predicate is not a {typeof(T).Name}");
}

/// <summary>An artefact of the run: a name and its digests (lowercase hex, keyed by algorithm).</summary>
public sealed record InTotoSubject(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("digest")] IReadOnlyDictionary<string, string> Digest);
