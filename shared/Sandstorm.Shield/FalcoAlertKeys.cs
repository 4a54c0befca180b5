using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Sandstorm.Shield;

/// <summary>
/// What in a Falco alert can name a Sandstorm sandbox (docs/shield.md, "Falco alerts"): sandboxes are named by their
/// host-side id (<c>ss</c> + 16 hex digits; a warm gVisor sandbox <c>sw</c>…), which is the name of their cgroup under
/// every controller, runc's and runsc's container id, and the value of <c>SANDSTORM_SANDBOX_ID</c> in the environment
/// of every process of the sandbox. So an alert names one by:
/// <list type="bullet">
/// <item><c>container.id</c> or <c>container.name</c>: the id, or Falco's 12-character short form of it;</item>
/// <item><c>proc.env[SANDSTORM_SANDBOX_ID]</c>, or <c>SANDSTORM_SANDBOX_ID=…</c> inside <c>proc.env</c>;</item>
/// <item>a cgroup path holding the id as a segment (<c>thread.cgroups</c>, any <c>thread.cgroup…</c> or <c>proc.cgroup…</c> field);</item>
/// <item>a host pid (<c>proc.pid</c>), resolved through its cgroup by the machine that runs the sandbox.</item>
/// </list>
/// </summary>
public static partial class FalcoAlertKeys
{
    /// <summary>The environment variable set on every process of a sandbox.</summary>
    public const string MarkerVariable = "SANDSTORM_SANDBOX_ID";

    /// <summary>Sandbox ids (full or 12-character short) and host pids the alert's fields name, each once, in field order.</summary>
    public static (IReadOnlyList<string> SandboxIds, IReadOnlyList<int> Pids) Of(Finding alert)
    {
        ArgumentNullException.ThrowIfNull(alert);
        var ids = new List<string>();
        var pids = new List<int>();
        void AddId(string? value)
        {
            if (value is not null && !ids.Contains(value, StringComparer.Ordinal))
            {
                ids.Add(value);
            }
        }

        foreach (var (field, value) in alert.OutputFields)
        {
            if (string.IsNullOrEmpty(value))
            {
                continue;
            }

            if (field is "container.id" or "container.name" or "proc.env[" + MarkerVariable + "]")
            {
                if (ContainerId().IsMatch(value))
                {
                    AddId(value);
                }
            }
            else if (field == "proc.env")
            {
                foreach (Match m in EnvMarker().Matches(value))
                {
                    AddId(m.Groups[1].Value);
                }
            }
            else if (field.StartsWith("thread.cgroup", StringComparison.Ordinal) || field.StartsWith("proc.cgroup", StringComparison.Ordinal))
            {
                foreach (Match m in CgroupSegment().Matches(value))
                {
                    AddId(m.Groups[1].Value);
                }
            }
            else if (field == "proc.pid" && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 1 && !pids.Contains(pid))
            {
                pids.Add(pid);
            }
        }

        // Falco says "host" for events outside any container; that names nothing.
        ids.Remove("host");
        return (ids, pids);
    }

    /// <summary>
    /// A stable id for an alert: Falco's own <c>uuid</c> when it sent one, else a digest of the alert as posted, so a
    /// re-post (falcosidekick retries) is the same finding.
    /// </summary>
    public static string IdOf(JsonElement alert)
    {
        if (alert.ValueKind == JsonValueKind.Object && alert.TryGetProperty("uuid", out var uuid) && uuid.ValueKind == JsonValueKind.String
            && uuid.GetString() is { Length: > 0 and <= 128 } text)
        {
            return "falco-" + text;
        }

        return "falco-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(alert.GetRawText())))[..32];
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{11,127}$")]
    private static partial Regex ContainerId();

    [GeneratedRegex(MarkerVariable + "=(s[sw][0-9a-f]{16})\\b")]
    private static partial Regex EnvMarker();

    [GeneratedRegex("(?:^|/)(s[sw][0-9a-f]{16})(?=/|$|[\\s,;])")]
    private static partial Regex CgroupSegment();
}
