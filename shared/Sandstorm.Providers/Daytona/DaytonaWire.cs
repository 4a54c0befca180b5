using System.Text.Json.Serialization;

namespace Sandstorm.Providers.Daytona;

// Daytona API (CreateSandbox, Sandbox) and toolbox (ExecuteRequest, ExecuteResponse) payloads; only the fields we use.

internal sealed record DaytonaCreateSandbox
{
    /// <summary>Unique in the organization: the run's deterministic name, so a second create for it collides instead of leaking.</summary>
    [JsonPropertyName("name")]
    public string? Name { get; init; }

    [JsonPropertyName("snapshot")]
    public string? Snapshot { get; init; }

    [JsonPropertyName("env")]
    public Dictionary<string, string> Env { get; init; } = [];

    [JsonPropertyName("labels")]
    public Dictionary<string, string> Labels { get; init; } = [];

    [JsonPropertyName("target")]
    public string? Target { get; init; }

    [JsonPropertyName("cpu")]
    public int Cpu { get; init; }

    /// <summary>GiB.</summary>
    [JsonPropertyName("memory")]
    public int Memory { get; init; }

    /// <summary>Minutes of inactivity before Daytona stops the sandbox (safety net if release is missed).</summary>
    [JsonPropertyName("autoStopInterval")]
    public int AutoStopInterval { get; init; }

    /// <summary>0: delete as soon as it stops (ephemeral).</summary>
    [JsonPropertyName("autoDeleteInterval")]
    public int AutoDeleteInterval { get; init; }

    [JsonPropertyName("networkBlockAll")]
    public bool NetworkBlockAll { get; init; }
}

internal sealed record DaytonaSandbox
{
    [JsonPropertyName("id")]
    public string? Id { get; init; }

    [JsonPropertyName("name")]
    public string? Name { get; init; }

    [JsonPropertyName("state")]
    public string? State { get; init; }

    [JsonPropertyName("labels")]
    public Dictionary<string, string>? Labels { get; init; }

    [JsonPropertyName("errorReason")]
    public string? ErrorReason { get; init; }

    [JsonPropertyName("toolboxProxyUrl")]
    public string? ToolboxProxyUrl { get; init; }

    [JsonPropertyName("target")]
    public string? Target { get; init; }
}

internal sealed record DaytonaProxyUrl([property: JsonPropertyName("url")] string? Url);

internal sealed record DaytonaExecuteRequest
{
    [JsonPropertyName("command")]
    public required string Command { get; init; }

    [JsonPropertyName("cwd")]
    public string? Cwd { get; init; }

    /// <summary>Seconds; the daemon kills the command after it.</summary>
    [JsonPropertyName("timeout")]
    public int Timeout { get; init; }

    [JsonPropertyName("envs")]
    public Dictionary<string, string>? Envs { get; init; }
}

internal sealed record DaytonaExecuteResponse
{
    [JsonPropertyName("exitCode")]
    public int? ExitCode { get; init; }

    /// <summary>Older daemons name it "code".</summary>
    [JsonPropertyName("code")]
    public int? Code { get; init; }

    /// <summary>stdout and stderr combined, as the daemon captures them.</summary>
    [JsonPropertyName("result")]
    public string? Result { get; init; }
}
