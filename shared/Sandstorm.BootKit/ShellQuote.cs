namespace Sandstorm.BootKit;

/// <summary>Quoting for POSIX sh and for systemd unit command lines.</summary>
public static class ShellQuote
{
    /// <summary>One POSIX shell word that stands for <paramref name="value"/> exactly.</summary>
    public static string Sh(string value) =>
        value.Length > 0 && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-' or '=' or ':' or ',' or '+' or '@')
            ? value
            : "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>An argv as a POSIX shell command line.</summary>
    public static string Sh(IEnumerable<string> argv) => string.Join(' ', argv.Select(Sh));

    /// <summary>One argument of a systemd <c>ExecStart=</c>: double-quoted, with specifiers (%) and variables ($) kept literal.</summary>
    public static string Systemd(string value) =>
        "\"" + value
            .Replace("\\", "\\\\", StringComparison.Ordinal)
            .Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("%", "%%", StringComparison.Ordinal)
            .Replace("$", "$$", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal) + "\"";

    /// <summary>An <c>Environment=</c> assignment, quoted for systemd.</summary>
    public static string SystemdEnvironment(string name, string value) =>
        "\"" + name + "=" + value
            .Replace("\\", "\\\\", StringComparison.Ordinal)
            .Replace("\"", "\\\"", StringComparison.Ordinal)
            .Replace("%", "%%", StringComparison.Ordinal)
            .Replace("\n", "\\n", StringComparison.Ordinal) + "\"";
}
