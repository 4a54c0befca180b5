using Sandstorm.Core.Contracts;

namespace Sandstorm.Security.Provenance;

/// <summary>Everything a kept sandbox's provenance attests, once it has ended.</summary>
public sealed record SandboxProvenanceInput
{
    public required string SandboxId { get; init; }

    public required string TenantId { get; init; }

    public required SandboxProvenanceRequest Request { get; init; }

    public RouteDecision? Route { get; init; }

    public required string Provider { get; init; }

    public required string Runtime { get; init; }

    public string? Region { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public DateTimeOffset? ReadyAt { get; init; }

    public required DateTimeOffset EndedAt { get; init; }

    public required SandboxStatus Status { get; init; }

    public CostBreakdown? Cost { get; init; }

    public IReadOnlyList<AttestedCommand> Commands { get; init; } = [];
}

/// <summary>A command with the digests (lowercase hex SHA-256) of its command line and of everything it printed.</summary>
public sealed record AttestedCommand(SandboxProvenanceCommand Command, string CmdSha256, string StdoutSha256, string StderrSha256);

/// <summary>Builds the in-toto statement of a kept sandbox.</summary>
public static class SandboxStatementBuilder
{
    /// <summary>Subject name prefix of a command's digests: <c>commands/{n}/cmd</c>, <c>/stdout</c>, <c>/stderr</c>.</summary>
    public const string CommandPrefix = "commands/";

    public static InTotoStatement Build(SandboxProvenanceInput input)
    {
        var subjects = new List<InTotoSubject>();
        foreach (var c in input.Commands.OrderBy(c => c.Command.Sequence))
        {
            var prefix = $"{CommandPrefix}{c.Command.Sequence}/";
            subjects.Add(Subject(prefix + "cmd", c.CmdSha256));
            subjects.Add(Subject(prefix + "stdout", c.StdoutSha256));
            subjects.Add(Subject(prefix + "stderr", c.StderrSha256));
        }

        if (subjects.Count == 0)
        {
            // A statement needs a subject: a sandbox that ran nothing attests its own (empty) command list.
            subjects.Add(Subject(CommandPrefix, RunIntent.Sha256Hex("")));
        }

        return new InTotoStatement
        {
            Subject = subjects,
            PredicateType = SandboxProvenancePredicate.TypeV1,
            Predicate = new SandboxProvenancePredicate
            {
                SandboxId = input.SandboxId,
                TenantId = input.TenantId,
                Request = input.Request,
                Route = input.Route,
                Execution = new ProvenanceExecution
                {
                    Provider = input.Provider,
                    Runtime = input.Runtime,
                    Region = input.Region,
                    IsolationLevel = input.Request.IsolationLevel,
                },
                CreatedAt = input.CreatedAt,
                ReadyAt = input.ReadyAt,
                EndedAt = input.EndedAt,
                Status = input.Status,
                Cost = input.Cost,
                Commands = [.. input.Commands.OrderBy(c => c.Command.Sequence).Select(c => c.Command)],
            },
        };
    }

    private static InTotoSubject Subject(string name, string sha256) => new(name, new Dictionary<string, string> { ["sha256"] = sha256 });
}
