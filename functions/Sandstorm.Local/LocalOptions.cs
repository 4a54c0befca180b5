namespace Sandstorm.Local;

/// <summary>How the local host runs, from its command line.</summary>
public sealed record LocalOptions
{
    /// <summary><c>azurite</c> (durable across restarts, the default) or <c>in-memory</c> (fast, lost on exit).</summary>
    public string Durable { get; init; } = "azurite";

    public string Urls { get; init; } = "http://127.0.0.1:7071";

    /// <summary>Storage connection string; when absent the host starts Azurite itself with its data under <c>.sandstorm/</c>.</summary>
    public string? Storage { get; init; }

    /// <summary>Directory for local state (Azurite data, the dev API key, the signing key): <c>.sandstorm/</c> of the repository.</summary>
    public string StateDirectory { get; init; } = DefaultStateDirectory();

    public string HubName { get; init; } = "SandstormHub";

    /// <summary>The developer tenant's limit of live sandboxes (<c>--dev-max-sandboxes</c>; else the tenant default, 20).</summary>
    public int? DevMaxSandboxes { get; init; }

    public static LocalOptions Parse(string[] args)
    {
        var options = new LocalOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            options = args[i] switch
            {
                "--durable" => options with { Durable = Durability(Next()) },
                "--urls" => options with { Urls = Next() },
                "--storage" => options with { Storage = Next() },
                "--state" => options with { StateDirectory = Next() },
                "--hub" => options with { HubName = Next() },
                "--dev-max-sandboxes" => options with { DevMaxSandboxes = int.TryParse(Next(), out var max) && max is >= 1 and <= 10_000 ? max : throw new ArgumentException("--dev-max-sandboxes is 1 to 10000") },
                _ => options,
            };
        }

        return options;
    }

    /// <summary><c>.sandstorm</c> beside the solution file above the current directory, else in the current directory.</summary>
    private static string DefaultStateDirectory()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Sandstorm.Functions.sln")))
            {
                return Path.Combine(dir.FullName, ".sandstorm");
            }
        }

        return Path.GetFullPath(".sandstorm");
    }

    private static string Durability(string value) =>
        value is "in-memory" or "azurite" ? value : throw new ArgumentException("--durable is in-memory or azurite");
}
