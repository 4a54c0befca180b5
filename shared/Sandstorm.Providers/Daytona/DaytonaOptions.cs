using Sandstorm.Providers.Cloud;

namespace Sandstorm.Providers.Daytona;

/// <summary>Daytona settings (<c>Sandstorm:Providers:Daytona</c>). BaseUrl defaults to the public API.</summary>
public sealed class DaytonaOptions : CloudProviderOptions
{
    public const string Section = "Sandstorm:Providers:Daytona";

    public DaytonaOptions()
    {
        BaseUrl = new Uri("https://app.daytona.io/api");
    }

    /// <summary>Snapshot to start from; null takes the account's default (python, node and bash).</summary>
    public string? Snapshot { get; set; }

    /// <summary>Daytona target (region) when the router does not choose one.</summary>
    public string? Target { get; set; }

    /// <summary>Where a run's files are written inside the sandbox.</summary>
    public string WorkDir { get; set; } = "/home/daytona/sandstorm";

    /// <summary>How long to wait for a created sandbox to reach <c>started</c> (polled, not retried).</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);

    public TimeSpan StartPollInterval { get; set; } = TimeSpan.FromMilliseconds(500);
}
