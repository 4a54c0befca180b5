using System.Globalization;

namespace Sandstorm.Cli;

/// <summary>CPU time of a process and of its children that have exited and been waited for, from <c>/proc/{pid}/stat</c>.</summary>
public readonly record struct ProcessCpu(TimeSpan Self, TimeSpan Children)
{
    /// <summary>Clock ticks per second of <c>/proc</c> times (USER_HZ, 100 on Linux).</summary>
    private const double TicksPerSecond = 100;

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
