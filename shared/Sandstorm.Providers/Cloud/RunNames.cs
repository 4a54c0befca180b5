using System.Security.Cryptography;
using System.Text;

namespace Sandstorm.Providers.Cloud;

/// <summary>
/// The deterministic sandbox name of a run on clouds whose names are unique (Daytona per organization, Modal per app):
/// a second create for the same run collides with the first instead of leaking a second sandbox.
/// </summary>
internal static class RunNames
{
    private const string Prefix = "sandstorm-";
    private const int MaxLength = 63;

    /// <summary>"sandstorm-" + the run id in lower case with anything but letters and digits made '-' (safe on every cloud); a hash when too long.</summary>
    public static string For(string runId)
    {
        var safe = new StringBuilder(Prefix.Length + runId.Length).Append(Prefix);
        foreach (var c in runId)
        {
            safe.Append(char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : '-');
        }

        return safe.Length <= MaxLength
            ? safe.ToString()
            : Prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(runId)))[..(MaxLength - Prefix.Length)];
    }
}
