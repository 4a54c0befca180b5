using System.Globalization;

namespace Sandstorm.Edge.Agent;

/// <summary>CPU count, memory and load of this machine, for heartbeats.</summary>
public static class MachineStats
{
    public static long MemoryMiB()
    {
        try
        {
            var line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            if (line is not null && long.TryParse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var kib))
            {
                return kib / 1024;
            }
        }
        catch (IOException)
        {
        }

        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024 * 1024);
    }

    /// <summary>One-minute load average (0 where the kernel does not expose it).</summary>
    public static double Load()
    {
        try
        {
            var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out var load) ? load : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
