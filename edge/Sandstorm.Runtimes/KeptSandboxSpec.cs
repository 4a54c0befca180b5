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

    /// <summary>
    /// Shield's policy for the sandbox's whole life (tenant rules, threshold, egress); null: not watched. A warm sandbox
    /// claimed with one is watched from its claim (<see cref="KeptSandboxPool.TakeAsync"/>).
    /// </summary>
    public Shield.ShieldPolicy? Shield { get; init; }

    /// <summary>The tenant the sandbox serves, so a Falco alert naming it is matched to that tenant only; null: unknown.</summary>
    public string? TenantId { get; init; }
}
