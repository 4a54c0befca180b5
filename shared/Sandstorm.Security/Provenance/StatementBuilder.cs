using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Security.Provenance;

/// <summary>Builds the in-toto statement of a run.</summary>
public static class StatementBuilder
{
    /// <summary>Subject name of the stdout digest.</summary>
    public const string StdoutSubject = "stdout";

    /// <summary>Subject name of the stderr digest.</summary>
    public const string StderrSubject = "stderr";

    /// <summary>Prefix of the code subject (<c>code/main.py</c>, ...).</summary>
    public const string CodePrefix = "code/";

    /// <summary>Prefix of input file subjects.</summary>
    public const string FilePrefix = "files/";

    /// <summary>The statement for <paramref name="input"/>.</summary>
    public static InTotoStatement Build(ProvenanceInput input)
    {
        var request = input.Intent;
        var subjects = new List<InTotoSubject>
        {
            Digest(CodePrefix + CodeFileName(request.Language), request.CodeSha256),
        };
        var files = request.FileDigests.OrderBy(f => f.Key, StringComparer.Ordinal).ToList();
        subjects.AddRange(files.Select(f => Digest(FilePrefix + f.Key, f.Value)));
        subjects.Add(Subject(StdoutSubject, input.Stdout));
        subjects.Add(Subject(StderrSubject, input.Stderr));

        var predicate = new RunProvenancePredicate
        {
            RunId = input.RunId,
            TenantId = input.TenantId,
            InstanceId = input.InstanceId,
            Request = new ProvenanceRequest
            {
                Language = request.Language,
                Files = files.Select(f => f.Key).ToList(),
                EnvironmentNames = request.EnvironmentNames,
                Cpu = request.Cpu,
                Memory = request.Memory,
                Timeout = request.Timeout,
                IsolationLevel = request.IsolationLevel,
                RuntimePreference = request.RuntimePreference,
                SecurityTier = request.SecurityTier,
                Strategy = request.Strategy,
                Constraints = request.Constraints,
            },
            Route = input.Route,
            Execution = new ProvenanceExecution
            {
                Provider = input.Provider,
                Runtime = input.Runtime,
                Region = input.Region,
                IsolationLevel = input.IsolationLevel,
                ExitCode = input.ExitCode,
            },
            Timings = new ProvenanceTimings(input.StartedAt, input.CompletedAt, (long)(input.CompletedAt - input.StartedAt).TotalMilliseconds),
            Cost = input.Cost,
            SecurityVerdict = input.SecurityVerdict,
            Shield = input.Shield,
        };

        return new InTotoStatement { Subject = subjects, PredicateType = RunProvenancePredicate.TypeV1, Predicate = predicate };
    }

    /// <summary>The statement as the payload bytes of the envelope.</summary>
    public static byte[] Serialize(InTotoStatement statement) => JsonSerializer.SerializeToUtf8Bytes(statement, SandstormJson.Options);

    /// <summary>Parses an envelope payload.</summary>
    public static InTotoStatement Parse(ReadOnlySpan<byte> payload) =>
        JsonSerializer.Deserialize<InTotoStatement>(payload, SandstormJson.Options) ?? throw new JsonException("empty statement");

    /// <summary>Lowercase hex SHA-256 of UTF-8 text (how strings of a run are digested).</summary>
    public static string Sha256Hex(string text) => RunIntent.Sha256Hex(text);

    /// <summary>Lowercase hex SHA-256 of bytes.</summary>
    public static string Sha256Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static InTotoSubject Subject(string name, string content) => Digest(name, Sha256Hex(content));

    private static InTotoSubject Digest(string name, string sha256) => new(name, new Dictionary<string, string> { ["sha256"] = sha256 });

    private static string CodeFileName(string language) =>
        Languages.IsSupported(language) ? Languages.MainFile(language) : "main";
}
