using System.Text.Json.Serialization;

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

    [JsonPropertyName("predicate")]
    public required RunProvenancePredicate Predicate { get; init; }
}

/// <summary>An artefact of the run: a name and its digests (lowercase hex, keyed by algorithm).</summary>
public sealed record InTotoSubject(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("digest")] IReadOnlyDictionary<string, string> Digest);
