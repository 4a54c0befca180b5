using System.Text.Json;
using Sandstorm.Core;
using Sandstorm.Security.TransparencyLog;

namespace Sandstorm.Cli;

/// <summary>A signing key the user chose to trust, and where it came from.</summary>
public sealed record PinnedKey(string KeyId, string PublicKeyPem, string Source, DateTimeOffset PinnedAt, string? ControlPlane);

/// <summary>What <c>sandstorm verify</c> remembers between runs: pinned keys, and the last verified tree head of each log.</summary>
public sealed record TrustState
{
    public List<PinnedKey> Keys { get; init; } = [];

    public Dictionary<string, SignedTreeHead> TreeHeads { get; init; } = new(StringComparer.Ordinal);
}

/// <summary>
/// The CLI's trust file, <c>trust.json</c> in <c>$SANDSTORM_CONFIG_DIR</c>, else <c>$XDG_CONFIG_HOME/sandstorm</c>, else
/// <c>~/.config/sandstorm</c>. The directory is 0700 and the file 0600: whoever can write it decides what verifies.
/// </summary>
public static class TrustStore
{
    /// <summary>The directory the trust file lives in.</summary>
    public static string Directory()
    {
        if (Environment.GetEnvironmentVariable("SANDSTORM_CONFIG_DIR") is { Length: > 0 } dir)
        {
            return dir;
        }

        var config = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
        return Path.Combine(config, "sandstorm");
    }

    public static string FilePath => Path.Combine(Directory(), "trust.json");

    public static async Task<TrustState> LoadAsync()
    {
        if (!File.Exists(FilePath))
        {
            return new TrustState();
        }

        var bytes = await File.ReadAllBytesAsync(FilePath);
        return JsonSerializer.Deserialize<TrustState>(bytes, SandstormJson.Options) ?? new TrustState();
    }

    /// <summary>Writes the state whole to a private temporary file and renames it over the old one.</summary>
    public static async Task SaveAsync(TrustState state)
    {
        var dir = Directory();
        if (!OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        else
        {
            System.IO.Directory.CreateDirectory(dir);
        }

        var temp = Path.Combine(dir, $".trust.{Environment.ProcessId}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        await using (var stream = new FileStream(temp, options))
        {
            await JsonSerializer.SerializeAsync(stream, state, SandstormJson.Options);
        }

        File.Move(temp, FilePath, overwrite: true);
    }
}
