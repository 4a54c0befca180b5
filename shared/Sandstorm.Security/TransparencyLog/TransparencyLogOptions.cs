namespace Sandstorm.Security.TransparencyLog;

/// <summary>Settings of the table-backed log (configuration section <c>Sandstorm:Log</c>).</summary>
public sealed record TransparencyLogOptions
{
    public string LogName { get; init; } = "sandstorm";

    public string TableName { get; init; } = "provenancelog";

    /// <summary>How long an append waits for the head to reach its entry before giving up (a lower entry whose writer died mid-claim).</summary>
    public TimeSpan HeadWaitTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
