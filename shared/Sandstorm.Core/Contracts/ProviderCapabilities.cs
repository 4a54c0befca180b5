namespace Sandstorm.Core.Contracts;

/// <summary>What a provider declares it can do; the router only places runs it honours.</summary>
public sealed record ProviderCapabilities
{
    /// <summary>Provider id: local, edge, e2b, daytona, modal, aca.</summary>
    public required string Provider { get; init; }

    public required IReadOnlyList<RuntimeOffer> Runtimes { get; init; }

    public required IReadOnlyList<string> Regions { get; init; }

    public required IReadOnlyList<string> Languages { get; init; }

    public double MaxCpu { get; init; } = 16;

    public int MaxMemoryMiB { get; init; } = 16 * 1024;

    public TimeSpan MaxTimeout { get; init; } = TimeSpan.FromMinutes(15);

    public required PriceSheet Price { get; init; }

    /// <summary>True when the provider's sandboxes reach the internet, so packages (<c>requirements</c>) can be installed in them.</summary>
    public bool Network { get; init; }

    /// <summary>True when the provider offers GPUs. None of the configured providers does yet.</summary>
    public bool Gpu { get; init; }

    /// <summary>True when execution completes asynchronously (edge agents): Execute dispatches and the run waits for a result event.</summary>
    public bool Asynchronous { get; init; }

    /// <summary>Bootable images the provider's machines were booted from (edge agents' heartbeats); empty elsewhere.</summary>
    public IReadOnlyList<EdgeBootImage> BootImages { get; init; } = [];
}

/// <summary>A runtime a provider offers, the isolation level it gives and how much of it Shield's monitor sees.</summary>
public sealed record RuntimeOffer(string Name, IsolationLevel Isolation)
{
    /// <summary>Shield's runtime monitoring on this runtime here: none on the clouds and where eBPF cannot run.</summary>
    public ShieldCoverageLevel Shield { get; init; }
}

/// <summary>List prices (USD) and billing rules of a provider.</summary>
public sealed record PriceSheet
{
    public double VcpuSecond { get; init; }

    public double GibSecond { get; init; }

    /// <summary>Minimum billed duration per run.</summary>
    public double MinimumSeconds { get; init; }

    /// <summary>Billing rounds durations up to this granularity.</summary>
    public double GranularitySeconds { get; init; } = 1;

    /// <summary>Cost of running <paramref name="cpu"/> vCPUs and <paramref name="memoryMiB"/> MiB for <paramref name="seconds"/>.</summary>
    public decimal CostFor(double cpu, int memoryMiB, double seconds)
    {
        var billed = Math.Max(seconds, MinimumSeconds);
        if (GranularitySeconds > 0)
        {
            billed = Math.Ceiling(billed / GranularitySeconds) * GranularitySeconds;
        }

        var usd = billed * ((cpu * VcpuSecond) + (memoryMiB / 1024.0 * GibSecond));
        return Math.Round((decimal)usd, 8, MidpointRounding.AwayFromZero);
    }
}

/// <summary>Live health of one provider as seen by the control plane (latency history, failures, circuit state, edge queue depth).</summary>
public sealed record ProviderHealth
{
    public double P50LatencyMs { get; init; }

    public double P95LatencyMs { get; init; }

    /// <summary>Share of recent runs that failed (0–1).</summary>
    public double FailureRate { get; init; }

    /// <summary>False when the provider's circuit is open or no agent is alive.</summary>
    public bool Available { get; init; } = true;

    public int QueueDepth { get; init; }

    public static ProviderHealth Unknown { get; } = new();
}
