using System.Globalization;

namespace Sandstorm.Cli;

/// <summary>CPU time of a process and of its children that have exited and been waited for, from <c>/proc/{pid}/stat</c>.</summary>
public readonly record struct ProcessCpu(TimeSpan Self, TimeSpan Children)
{
    /// <summary>Clock ticks per second of <c>/proc</c> times (USER_HZ, 100 on Linux).</summary>
    private const double TicksPerSecond = 100;

    /// <summary>
    /// CPU of a process's live children, split by <paramref name="matches"/> on their command lines, each with everything it
    /// waited for in turn (a fork server that outlives the measurement reaps the runs it forked).
    /// </summary>
    public static (TimeSpan Matching, TimeSpan Other) LiveChildren(int pid, Func<string, bool> matches)
    {
        var (matching, other) = (TimeSpan.Zero, TimeSpan.Zero);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var child) && ParentOf(child) == pid)
            {
                try
                {
                    var matched = matches(File.ReadAllText($"/proc/{child}/cmdline").Replace('\0', ' '));
                    var c = Read(child);
                    if (matched)
                    {
                        matching += c.Self + c.Children;
                    }
                    else
                    {
                        other += c.Self + c.Children;
                    }
                }
                catch (IOException)
                {
                    // Ended meanwhile: counted in the parent's children once waited for.
                }
            }
        }

        return (matching, other);
    }

    private static int? ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
    }

    public static ProcessCpu Read(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");

        // Fields after the command name (which may hold spaces) in parentheses; utime is field 14 of the whole line.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        double Field(int number) => double.Parse(fields[number - 3], CultureInfo.InvariantCulture);
        return new ProcessCpu(
            TimeSpan.FromSeconds((Field(14) + Field(15)) / TicksPerSecond),
            TimeSpan.FromSeconds((Field(16) + Field(17)) / TicksPerSecond));
    }
}
