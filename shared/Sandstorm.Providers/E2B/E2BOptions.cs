using Sandstorm.Providers.Cloud;

namespace Sandstorm.Providers.E2B;

/// <summary>E2B settings (<c>Sandstorm:Providers:E2B</c>). BaseUrl defaults to the public API.</summary>
public sealed class E2BOptions : CloudProviderOptions
{
    public const string Section = "Sandstorm:Providers:E2B";

    public E2BOptions()
    {
        BaseUrl = new Uri("https://api.e2b.app");
    }

    /// <summary>Sandbox template (E2B's image); <c>base</c> has python3, node and bash.</summary>
    public string Template { get; set; } = "base";

    /// <summary>
    /// Overrides envd's address (normally <c>https://49983-{sandboxID}.{domain}</c>). The official SDK calls this E2B_SANDBOX_URL;
    /// set it to reach a stand-in.
    /// </summary>
    public Uri? SandboxUrl { get; set; }

    /// <summary>Sandbox domain when the API returns none.</summary>
    public string Domain { get; set; } = "e2b.app";

    public bool AllowInternetAccess { get; set; }

    /// <summary>Where a run's files are written inside the sandbox.</summary>
    public string WorkDir { get; set; } = "/home/user/sandstorm";

    /// <summary>envd user the process runs as.</summary>
    public string User { get; set; } = "user";

    /// <summary>
    /// Longest silence tolerated on the output stream. envd sends keepalives (we ask for one every
    /// <see cref="KeepaliveInterval"/>), so silence beyond this means the stream is stuck — a known E2B failure mode.
    /// </summary>
    public TimeSpan StreamIdleTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public TimeSpan KeepaliveInterval { get; set; } = TimeSpan.FromSeconds(10);
}
