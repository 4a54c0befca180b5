namespace Sandstorm.Runtimes;

/// <summary>The limits of a kept sandbox, shared by everything that runs in it.</summary>
public sealed record KeptSandboxSpec
{
    /// <summary>vCPUs (a CFS quota).</summary>
    public double Cpu { get; init; } = 1;

    /// <summary>Memory of everything in the sandbox together.</summary>
    public int MemoryMiB { get; init; } = 512;

    /// <summary>Most processes at once, all commands together.</summary>
    public int MaxProcesses { get; init; } = 256;

    /// <summary>Size of the writable home (<c>/home/user</c>, a tmpfs when running as root).</summary>
    public int DiskMiB { get; init; } = 512;
}
