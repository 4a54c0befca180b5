namespace Sandstorm.Core.Contracts;

/// <summary>
/// <c>POST /v1/sandboxes</c>: a sandbox an agent keeps across commands, placed by the same intent as a run. Its
/// lifetime (<see cref="Timeout"/>, seconds) is separate from each command's timeout.
/// </summary>
public sealed record SandboxCreateRequest
{
    public IsolationLevel IsolationLevel { get; init; } = IsolationLevel.Standard;

    public RoutingStrategy Strategy { get; init; } = RoutingStrategy.Balanced;

    public RunConstraints? Constraints { get; init; }

    public SecurityTier SecurityTier { get; init; } = SecurityTier.Basic;

    public string? RuntimePreference { get; init; }

    /// <summary>Recorded and listed; every Sandstorm sandbox offers the same tools (python3, node, bash and the host's /usr).</summary>
    public string? Template { get; init; }

    /// <summary>Labels to find the sandbox again (<c>GET /v1/sandboxes?metadata=k=v</c>).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>Environment variables of every command (a command's own variables win).</summary>
    public IReadOnlyDictionary<string, string>? EnvVars { get; init; }

    /// <summary>vCPUs of the whole sandbox.</summary>
    public double Cpu { get; init; } = 1;

    /// <summary>Memory of the whole sandbox, MiB.</summary>
    public int Memory { get; init; } = 512;

    /// <summary>Size of its writable home, MiB.</summary>
    public int Disk { get; init; } = 512;

    /// <summary>Lifetime in seconds from now (default 5 minutes; capped per tenant). Extend with <c>POST .../timeout</c>.</summary>
    public int? Timeout { get; init; }
}

/// <summary>Lifecycle of a kept sandbox.</summary>
public enum SandboxStatus
{
    /// <summary>Being placed and started.</summary>
    Starting,

    /// <summary>Up: commands and file operations reach it.</summary>
    Running,

    /// <summary>Destroyed on request.</summary>
    Stopped,

    /// <summary>Destroyed at the end of its lifetime.</summary>
    Expired,

    /// <summary>The host or agent that held it died; it is gone and is never recreated empty.</summary>
    Lost,

    /// <summary>Killed by Shield.</summary>
    Quarantined,

    /// <summary>Could not be placed or started.</summary>
    Failed,
}

/// <summary>Helpers over <see cref="SandboxStatus"/>.</summary>
public static class SandboxStatusExtensions
{
    /// <summary>True once the sandbox can change no more.</summary>
    public static bool IsEnded(this SandboxStatus status) => status is not (SandboxStatus.Starting or SandboxStatus.Running);
}

/// <summary>A kept sandbox as the API shows it.</summary>
public sealed record SandboxInfo
{
    public required string Id { get; init; }

    public required SandboxStatus Status { get; init; }

    public string? Provider { get; init; }

    public string? Runtime { get; init; }

    public string? Region { get; init; }

    public IsolationLevel IsolationLevel { get; init; }

    public SecurityTier SecurityTier { get; init; }

    public string? Template { get; init; }

    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    public double Cpu { get; init; }

    public int Memory { get; init; }

    public int Disk { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When it will be destroyed unless extended.</summary>
    public DateTimeOffset ExpiresAt { get; init; }

    public DateTimeOffset? EndedAt { get; init; }

    /// <summary>Commands run so far.</summary>
    public int Commands { get; init; }

    /// <summary>Billed once it has ended: seconds of life at the provider's price, plus the tier fees.</summary>
    public CostBreakdown? Cost { get; init; }

    public RouteDecision? Route { get; init; }

    /// <summary>Signed record of every command, once the sandbox has ended.</summary>
    public ProvenanceRef? Provenance { get; init; }

    public RunError? Error { get; init; }
}

/// <summary><c>POST /v1/sandboxes/{id}/commands</c>: a shell command line run in the sandbox.</summary>
public sealed record CommandRequest
{
    /// <summary>The command line, run by <c>/bin/bash -l -c</c>.</summary>
    public string Cmd { get; init; } = "";

    /// <summary>Working directory; default the home (<c>/home/user</c>).</summary>
    public string? Cwd { get; init; }

    /// <summary>Variables of this command, over the sandbox's.</summary>
    public IReadOnlyDictionary<string, string>? Env { get; init; }

    /// <summary>The command's own limit in milliseconds (default 60 s; 0: until the sandbox ends).</summary>
    public int? Timeout { get; init; }

    /// <summary>Answer 202 at once with the command's id; read its output from its event stream.</summary>
    public bool Background { get; init; }

    /// <summary>Keep stdin open for <c>POST .../stdin</c>; otherwise stdin is empty.</summary>
    public bool Stdin { get; init; }
}

/// <summary>A command of a kept sandbox.</summary>
public sealed record CommandInfo
{
    public required string Id { get; init; }

    public required string SandboxId { get; init; }

    /// <summary>Pid inside the sandbox.</summary>
    public int Pid { get; init; }

    public required string Cmd { get; init; }

    /// <summary><c>running</c>, <c>exited</c>, <c>killed</c>, <c>timed_out</c>, <c>sandbox_ended</c>.</summary>
    public required string Status { get; init; }

    public int? ExitCode { get; init; }

    public int? Signal { get; init; }

    public DateTimeOffset StartedAt { get; init; }

    public DateTimeOffset? EndedAt { get; init; }

    /// <summary>Why it ended, when not by itself (timeout, kill, the sandbox ending).</summary>
    public string? Error { get; init; }
}

/// <summary>The <c>POST /v1/sandboxes/{id}/timeout</c> body: the new lifetime in seconds from now.</summary>
public sealed record SandboxTimeoutRequest(int Timeout);

/// <summary><c>POST /v1/sandboxes/{id}/commands/{commandId}/stdin</c>: text (or base64 bytes) to write, and whether to close stdin after.</summary>
public sealed record CommandInputRequest
{
    public string? Data { get; init; }

    /// <summary>Bytes as base64, instead of <see cref="Data"/>.</summary>
    public string? DataBase64 { get; init; }

    public bool Close { get; init; }
}

/// <summary><c>POST /v1/sandboxes/{id}/files/move</c> and <c>.../files/mkdir</c>.</summary>
public sealed record FileOperationRequest
{
    public string Path { get; init; } = "";

    public string? Destination { get; init; }
}
