using System.Text.Json;
using Sandstorm.Core;

namespace Sandstorm.Edge.Agent;

/// <summary>What <c>init</c> saves and <c>start</c> runs with. Holds the agent credential, so the file is mode 0600.</summary>
public sealed record AgentConfig
{
    public const string EnvironmentVariable = "SANDSTORM_EDGE_CONFIG";

    public required string ControlPlane { get; init; }

    public required string AgentId { get; init; }

    public required string AgentToken { get; init; }

    public required string TenantId { get; init; }

    public required string Name { get; init; }

    public string? Region { get; init; }

    /// <summary>The agent runs in a network that reaches the control plane only at times: it keeps working and queues its results.</summary>
    public bool VpcMode { get; init; }

    public IReadOnlyDictionary<string, string>? Labels { get; init; }

    /// <summary>Directory of undelivered results and telemetry; default <c>outbox/</c> beside the config file.</summary>
    public string? Outbox { get; init; }

    /// <summary><c>--config</c>, else <c>$SANDSTORM_EDGE_CONFIG</c>, else <c>~/.sandstorm-edge/agent.json</c>.</summary>
    public static string ResolvePath(string? option) =>
        Path.GetFullPath(option
            ?? (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env ? env : null)
            ?? Path.Combine(DefaultDirectory, "agent.json"));

    public string OutboxDirectory(string configPath) =>
        Path.GetFullPath(Outbox ?? Path.Combine(Path.GetDirectoryName(configPath)!, "outbox"));

    public static async Task<AgentConfig> LoadAsync(string path, CancellationToken ct)
    {
        // A file from an earlier version or made by hand may be readable by others: it holds the agent's credential.
        if ((File.GetUnixFileMode(path) & (UnixFileMode)0x3F) != 0)
        {
            File.SetUnixFileMode(path, OwnerOnlyFile);
        }

        await using var stream = File.OpenRead(path);
        return await JsonSerializer.DeserializeAsync<AgentConfig>(stream, SandstormJson.Options, ct)
            ?? throw new InvalidDataException($"{path} is empty");
    }

    /// <summary>Writes the file owner-only (0600, directory 0700), atomically: a crash leaves the old file or the new one.</summary>
    public async Task SaveAsync(string path, CancellationToken ct)
    {
        var directory = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, OwnerOnlyDirectory);
        }

        SecureDirectory(directory, Path.GetFileName(path));

        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = OwnerOnlyFile };
        await using (var stream = new FileStream(temp, options))
        {
            await JsonSerializer.SerializeAsync(stream, this, new JsonSerializerOptions(SandstormJson.Options) { WriteIndented = true }, ct);
            await stream.FlushAsync(ct);
            stream.Flush(flushToDisk: true);
        }

        // UnixCreateMode applies only to new files; make sure a leftover temp file is owner-only too.
        File.SetUnixFileMode(temp, OwnerOnlyFile);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Makes the config's directory owner-only (0700) when it is the agent's own: the default one, or one that holds
    /// nothing but the agent's files. A directory shared with other files (<c>/etc</c>, a home directory) is not the
    /// agent's to change; the config file itself is 0600 and the outbox beside it 0700 either way. A directory others
    /// may write is refused: they could replace the config.
    /// </summary>
    public static void SecureDirectory(string directory, string configFileName)
    {
        var full = Path.GetFullPath(directory);
        var mode = File.GetUnixFileMode(full);
        if ((mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0 && (mode & UnixFileMode.StickyBit) == 0)
        {
            throw new InvalidOperationException($"the agent's config directory {full} is writable by other users (mode {Convert.ToString((int)mode, 8)}): they could replace the config; make it owner-only or choose another --config");
        }

        var own = full == DefaultDirectory || Directory.EnumerateFileSystemEntries(full).Select(Path.GetFileName).All(name =>
            name == configFileName || name == "outbox" || (name!.StartsWith('.') && name.EndsWith(".tmp", StringComparison.Ordinal)));
        if (own && (mode & (UnixFileMode)0x3F) != 0 && (mode & UnixFileMode.StickyBit) == 0)
        {
            File.SetUnixFileMode(full, OwnerOnlyDirectory);
        }
    }

    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private static string DefaultDirectory => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".sandstorm-edge");
}
