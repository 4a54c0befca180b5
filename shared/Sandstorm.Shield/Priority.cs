namespace Sandstorm.Shield;

/// <summary>Falco's priorities, most severe first (the syslog order Falco uses).</summary>
public enum Priority
{
    Emergency = 0,
    Alert = 1,
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Informational = 6,
    Debug = 7,
}

/// <summary>Parsing and ordering of <see cref="Priority"/> as Falco spells it in rule files and alerts.</summary>
public static class Priorities
{
    /// <summary>Accepts Falco's names in any case, including <c>info</c> for informational.</summary>
    public static bool TryParse(string? text, out Priority priority)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "emergency": priority = Priority.Emergency; return true;
            case "alert": priority = Priority.Alert; return true;
            case "critical": priority = Priority.Critical; return true;
            case "error": priority = Priority.Error; return true;
            case "warning": priority = Priority.Warning; return true;
            case "notice": priority = Priority.Notice; return true;
            case "informational" or "info": priority = Priority.Informational; return true;
            case "debug": priority = Priority.Debug; return true;
            default: priority = Priority.Debug; return false;
        }
    }

    /// <summary>True when <paramref name="priority"/> is as severe as <paramref name="threshold"/> or more.</summary>
    public static bool IsAtLeast(this Priority priority, Priority threshold) => priority <= threshold;

    /// <summary>The name Falco writes in its alerts (<c>Critical</c>, <c>Informational</c>...).</summary>
    public static string FalcoName(this Priority priority) => priority.ToString();
}
