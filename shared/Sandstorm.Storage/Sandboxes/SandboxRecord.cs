using Sandstorm.Core.Contracts;

namespace Sandstorm.Storage.Sandboxes;

/// <summary>A kept sandbox's record: what was asked, where it lives, its life and its bill.</summary>
public sealed record SandboxRecord
{
    public required string TenantId { get; init; }

    public required string SandboxId { get; init; }

    public required SandboxStatus Status { get; init; }

    /// <summary>The request as asked, without its environment values (<see cref="EnvVars"/>).</summary>
    public required SandboxCreateRequest Request { get; init; }

    /// <summary>The environment of every command. Kept with the record (the tenant's own values, as a run's request keeps them).</summary>
    public IReadOnlyDictionary<string, string> EnvVars { get; init; } = new Dictionary<string, string>();

    public string? Provider { get; init; }

    /// <summary>The sandbox's id at its provider (a cloud's id, or this host's runtime id).</summary>
    public string? ProviderSandboxId { get; init; }

    public string? Runtime { get; init; }

    public string? Region { get; init; }

    /// <summary>Provider-specific, non-secret details of the placement (the agent that holds it, a domain...).</summary>
    public IReadOnlyDictionary<string, string>? LeaseData { get; init; }

    public RouteDecision? Route { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>When it became usable: billing starts here.</summary>
    public DateTimeOffset? ReadyAt { get; init; }

    public required DateTimeOffset ExpiresAt { get; init; }

    public DateTimeOffset? EndedAt { get; init; }

    /// <summary>
    /// Asked to end with this status (a delete, Shield) and being destroyed by its lifecycle: from this moment it takes no
    /// command or file operation and a second end request is refused, although <see cref="Status"/> changes only once it is gone.
    /// </summary>
    public SandboxStatus? EndRequested { get; init; }

    public DateTimeOffset? EndRequestedAt { get; init; }

    /// <summary>Ended, or asked to end: no longer usable.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsOver => Status.IsEnded() || EndRequested is not null;

    /// <summary>
    /// The per-sandbox token its E2B-wire (envd) calls carry. Kept as it is (not hashed): E2B's <c>GET /sandboxes/{id}</c>
    /// hands it back to the API key's holder, and <c>/files</c> URL signatures are keyed by it. It reaches only this sandbox.
    /// </summary>
    public string? AccessToken { get; init; }

    /// <summary>Commands started so far.</summary>
    public int Commands { get; init; }

    public CostBreakdown? Cost { get; init; }

    public ProvenanceRef? Provenance { get; init; }

    public RunError? Error { get; init; }
}

/// <summary>One command of a kept sandbox, as its provenance attests it: digests, never the output itself.</summary>
public sealed record SandboxCommandRecord
{
    public required string TenantId { get; init; }

    public required string SandboxId { get; init; }

    public required string CommandId { get; init; }

    /// <summary>Order within the sandbox (1, 2, ...).</summary>
    public required int Sequence { get; init; }

    public int Pid { get; init; }

    /// <summary>The command line (at most 4 KiB kept; <see cref="CmdSha256"/> covers all of it).</summary>
    public required string Cmd { get; init; }

    public required string CmdSha256 { get; init; }

    public string? Cwd { get; init; }

    public required string Status { get; init; }

    public int? ExitCode { get; init; }

    public int? Signal { get; init; }

    public DateTimeOffset StartedAt { get; init; }

    public DateTimeOffset? EndedAt { get; init; }

    public string? StdoutSha256 { get; init; }

    public long StdoutBytes { get; init; }

    public string? StderrSha256 { get; init; }

    public long StderrBytes { get; init; }

    public string? Error { get; init; }
}
