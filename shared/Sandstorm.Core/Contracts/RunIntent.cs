using System.Security.Cryptography;
using System.Text;

namespace Sandstorm.Core.Contracts;

/// <summary>
/// What every step of a run but Execute needs from its request — where to place it, how to bill it, what to attest —
/// without code, file contents or environment values. Read once at submission; only Execute reads the request itself.
/// </summary>
public sealed record RunIntent
{
    public required string Language { get; init; }

    public double Cpu { get; init; } = 1;

    /// <summary>Memory in MiB.</summary>
    public int Memory { get; init; } = 512;

    /// <summary>Execution timeout in milliseconds.</summary>
    public int Timeout { get; init; } = 30_000;

    public IsolationLevel IsolationLevel { get; init; } = IsolationLevel.Standard;

    public string? RuntimePreference { get; init; }

    public SecurityTier SecurityTier { get; init; }

    public RoutingStrategy Strategy { get; init; } = RoutingStrategy.Balanced;

    public RunConstraints? Constraints { get; init; }

    /// <summary>A bare-metal run: the image (<c>name[@sha256:…]</c>) the edge agent's machine must be booted from.</summary>
    public string? BootcImage { get; init; }

    /// <summary>Length of the code in characters.</summary>
    public int CodeLength { get; init; }

    /// <summary>Lower-case hex SHA-256 of the code's UTF-8 bytes.</summary>
    public required string CodeSha256 { get; init; }

    /// <summary>Input files by path, each with the lower-case hex SHA-256 of its UTF-8 content (ordinal order).</summary>
    public IReadOnlyDictionary<string, string> FileDigests { get; init; } = new Dictionary<string, string>();

    /// <summary>Package requirements to install (non-comment lines of a python run's <c>requirements.txt</c>): they need network.</summary>
    public int Requirements { get; init; }

    /// <summary>True when the run asked for a GPU.</summary>
    public bool Gpu { get; init; }

    /// <summary>Names of the environment variables set; their values are never kept outside the request.</summary>
    public IReadOnlyList<string> EnvironmentNames { get; init; } = [];

    /// <summary>The intent of a validated request.</summary>
    public static RunIntent Of(RunRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var files = request.Files ?? new Dictionary<string, string>();
        return new RunIntent
        {
            Language = request.Language,
            Cpu = request.Cpu,
            Memory = request.Memory,
            Timeout = request.Timeout,
            IsolationLevel = request.IsolationLevel,
            RuntimePreference = request.RuntimePreference,
            SecurityTier = request.SecurityTier,
            Strategy = request.Strategy,
            Constraints = request.Constraints,
            BootcImage = request.Deployment == Deployments.BareMetal ? request.BootcImage : null,
            CodeLength = request.Code.Length,
            CodeSha256 = Sha256Hex(request.Code),
            FileDigests = files.OrderBy(f => f.Key, StringComparer.Ordinal).ToDictionary(f => f.Key, f => Sha256Hex(f.Value ?? ""), StringComparer.Ordinal),
            Requirements = RequirementsOf(request.Language, files),
            Gpu = request.Gpu == true,
            EnvironmentNames = [.. (request.Environment ?? new Dictionary<string, string>()).Keys.Order(StringComparer.Ordinal)],
        };
    }

    /// <summary>
    /// How many packages a run installs before it starts: the non-comment lines of its <c>requirements.txt</c> when it is a
    /// python run (pip); for other languages the file is only a file.
    /// </summary>
    public static int RequirementsOf(string language, IReadOnlyDictionary<string, string>? files) =>
        language == Languages.Python && files is not null && files.TryGetValue("requirements.txt", out var requirements) && requirements is not null
            ? requirements.Split('\n').Count(line => line.Trim() is { Length: > 0 } l && !l.StartsWith('#'))
            : 0;

    /// <summary>Lower-case hex SHA-256 of UTF-8 text: how code, files and outputs of a run are digested.</summary>
    public static string Sha256Hex(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
