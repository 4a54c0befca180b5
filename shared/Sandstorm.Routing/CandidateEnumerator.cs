using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;

namespace Sandstorm.Routing;

/// <summary>
/// Expands providers into provider × runtime × region candidates and keeps those that honour the run's hard constraints:
/// isolation level, language, resources, allowed regions (names or residency sets), the allow/deny lists and availability.
/// The preferred region is not one of them: it is priced (through predicted latency), never filtered on.
/// </summary>
public static class CandidateEnumerator
{
    /// <summary>Feasible candidates, and each rejected one with the reason.</summary>
    public static (List<Candidate> Feasible, List<RouteCandidate> Rejected) Enumerate(RoutingContext context)
    {
        var w = context.Workload;
        var feasible = new List<Candidate>();
        var rejected = new List<RouteCandidate>();
        var preferred = w.Constraints?.PreferredProviders is { Count: > 0 } p ? p : null;
        var excluded = w.Constraints?.ExcludeProviders ?? [];
        var allowedRegions = w.Constraints?.AllowedRegions is { Count: > 0 } a ? a : null;

        foreach (var provider in context.Providers)
        {
            // A runtime listed once per level it honours (a stronger runtime serving weaker levels) is one placement:
            // take the offer that matches the run, else the first for the refusal message.
            foreach (var offers in provider.Runtimes.GroupBy(r => r.Name, StringComparer.Ordinal))
            {
                var runtime = offers.FirstOrDefault(o => o.Isolation == w.IsolationLevel) ?? offers.First();
                var levels = string.Join("/", offers.Select(o => Name(o.Isolation)).Distinct());
                foreach (var r in provider.Regions)
                {
                    var health = HealthOf(context.Health, provider.Provider, r);
                    var candidate = new RouteCandidate(provider.Provider, runtime.Name, r);
                    var why = RejectReason(w, provider, runtime, levels, r, health, preferred, excluded, allowedRegions);
                    if (why is null)
                    {
                        feasible.Add(new Candidate(candidate, provider, runtime, health));
                    }
                    else
                    {
                        rejected.Add(candidate with { Rejected = why });
                    }
                }
            }
        }

        if (feasible.Count == 0)
        {
            throw Binding(context, rejected);
        }

        return (feasible, rejected);
    }

    private static string? RejectReason(
        Workload w,
        ProviderCapabilities provider,
        RuntimeOffer runtime,
        string levels,
        string region,
        ProviderHealth health,
        IReadOnlyList<string>? preferred,
        IReadOnlyList<string> excluded,
        IReadOnlyList<string>? allowedRegions)
    {
        if (w.BootcImage is { } image && !provider.BootImages.Any(b => Deployments.Matches(image, b)))
        {
            return $"{BareMetalPrefix} '{image}'";
        }

        if (excluded.Contains(provider.Provider, StringComparer.OrdinalIgnoreCase))
        {
            return "excluded by constraints.excludeProviders";
        }

        if (preferred is not null && !preferred.Contains(provider.Provider, StringComparer.OrdinalIgnoreCase))
        {
            return "not in constraints.preferredProviders";
        }

        if (runtime.Isolation != w.IsolationLevel)
        {
            return $"runtime gives isolation '{levels}', run needs '{Name(w.IsolationLevel)}'";
        }

        if (w.Constraints?.RequireShieldCoverage == true && runtime.Shield == ShieldCoverageLevel.None)
        {
            return $"{ShieldPrefix}: {provider.Provider}/{runtime.Name} has no Shield runtime monitoring here";
        }

        if (w.RuntimePreference is { Length: > 0 } want && !string.Equals(want, runtime.Name, StringComparison.OrdinalIgnoreCase))
        {
            return $"runtimePreference is '{want}'";
        }

        if (!provider.Languages.Contains(w.Language))
        {
            return $"language '{w.Language}' not offered";
        }

        if (w.NeedsNetwork && !provider.Network)
        {
            return "no network to install the run's requirements";
        }

        if (w.Gpu && !provider.Gpu)
        {
            return "no GPU";
        }

        if (w.Cpu > provider.MaxCpu || w.MemoryMiB > provider.MaxMemoryMiB || w.TimeoutMs > provider.MaxTimeout.TotalMilliseconds)
        {
            return "resources exceed provider limits";
        }

        if (allowedRegions is not null && !Regions.RegionCatalog.Default.Allows(allowedRegions, region))
        {
            return $"{AllowedRegionsPrefix} [{string.Join(", ", allowedRegions)}]";
        }

        if (!health.Available)
        {
            return "provider unavailable (circuit open or no live agent)";
        }

        return null;
    }

    private static NoCandidateException Binding(RoutingContext context, List<RouteCandidate> rejected)
    {
        var w = context.Workload;
        var level = Name(w.IsolationLevel);

        // A bare-metal run that no live agent's image matches: name the image, and the images that are running.
        if (w.BootcImage is { } image && rejected.All(c => c.Rejected!.StartsWith(BareMetalPrefix, StringComparison.Ordinal)))
        {
            var running = context.Providers.SelectMany(p => p.BootImages).Select(b => $"{b.Name}@{b.Digest}").Distinct(StringComparer.Ordinal).ToList();
            return new NoCandidateException(
                ErrorCodes.NoCandidate,
                $"deployment 'bare-metal': no live edge agent of this tenant was booted from bootcImage '{image}'"
                + (running.Count > 0 ? $" (images running: {string.Join(", ", running)})" : " (no live agent reports a boot image)"));
        }

        var offering = context.Providers
            .Where(p => p.Runtimes.Any(r => r.Isolation == w.IsolationLevel))
            .Select(p => p.Provider)
            .ToList();
        if (offering.Count == 0)
        {
            var available = string.Join(", ", context.Providers.Select(p =>
                $"{p.Provider}: {string.Join("/", p.Runtimes.Select(r => Name(r.Isolation)).Distinct())}"));
            return new NoCandidateException(
                ErrorCodes.IsolationUnavailable,
                $"no provider offers isolation level '{level}' here" + (available.Length > 0 ? $" (available: {available})" : " (no providers)"));
        }

        // The region constraint alone rules out everything that could otherwise run it: say so, and where it could run.
        if (w.Constraints?.AllowedRegions is { Count: > 0 } allowed)
        {
            var elsewhere = rejected
                .Where(c => c.Rejected!.StartsWith(AllowedRegionsPrefix, StringComparison.Ordinal))
                .Select(c => c.Region)
                .Distinct(StringComparer.OrdinalIgnoreCase)
                .ToList();
            // A region rejection means the candidate passed every check before it (isolation, language, resources).
            if (elsewhere.Count > 0)
            {
                return new NoCandidateException(
                    ErrorCodes.NoCandidate,
                    $"no candidate in constraints.allowedRegions [{string.Join(", ", allowed)}] can run isolation level '{level}'; it runs in {string.Join(", ", elsewhere)}");
            }
        }

        // The Shield requirement rules out placements that could otherwise run it: say which, and why the rest failed.
        if (w.Constraints?.RequireShieldCoverage == true)
        {
            var uncovered = rejected
                .Where(c => c.Rejected!.StartsWith(ShieldPrefix, StringComparison.Ordinal))
                .Select(c => $"{c.Provider}/{c.Runtime}")
                .Distinct(StringComparer.Ordinal)
                .ToList();
            if (uncovered.Count > 0)
            {
                var others = rejected
                    .Where(c => offering.Contains(c.Provider) && !c.Rejected!.StartsWith(ShieldPrefix, StringComparison.Ordinal))
                    .Select(c => $"{c.Key}: {c.Rejected}")
                    .Distinct(StringComparer.Ordinal)
                    .ToList();
                return new NoCandidateException(
                    ErrorCodes.NoCandidate,
                    $"no placement with Shield coverage (constraints.requireShieldCoverage) can run isolation level '{level}': "
                    + $"{string.Join(", ", uncovered)} have no runtime monitoring"
                    + (others.Count > 0 ? $"; the others: {string.Join("; ", others)}" : ""));
            }
        }

        // Name the first reason that rules out every candidate of a provider that could give the level.
        var reasons = rejected
            .Where(c => offering.Contains(c.Provider))
            .GroupBy(c => c.Rejected)
            .OrderByDescending(g => g.Count())
            .Select(g => g.Key)
            .ToList();
        return new NoCandidateException(
            ErrorCodes.NoCandidate,
            $"no candidate fits the run at isolation level '{level}': {string.Join("; ", reasons)}");
    }

    /// <summary>
    /// Health of a provider in a region: the <c>provider/region</c> entry when the health source tracks regions
    /// (outages and load are regional), else the provider-wide entry, else unknown.
    /// </summary>
    public static ProviderHealth HealthOf(IReadOnlyDictionary<string, ProviderHealth> health, string provider, string region) =>
        health.GetValueOrDefault(HealthKey(provider, region)) ?? health.GetValueOrDefault(provider) ?? ProviderHealth.Unknown;

    /// <summary>The key of a regional entry in <see cref="RoutingContext.Health"/>.</summary>
    public static string HealthKey(string provider, string region) => $"{provider}/{region}";

    private const string BareMetalPrefix = "not booted from bootcImage";

    private const string AllowedRegionsPrefix = "region not in constraints.allowedRegions";

    private const string ShieldPrefix = "no Shield coverage (constraints.requireShieldCoverage)";

    /// <summary>The wire name of an isolation level.</summary>
    public static string Name(IsolationLevel level) => level.ToString().ToLowerInvariant();
}

/// <summary>A feasible placement with what the router knows about it.</summary>
public sealed record Candidate(RouteCandidate Route, ProviderCapabilities Provider, RuntimeOffer Runtime, ProviderHealth Health)
{
    /// <summary>List price of the run at its full timeout: an upper bound on cost.</summary>
    public double ListPriceCeilingUsd(Workload w) =>
        (double)Provider.Price.CostFor(w.Cpu, w.MemoryMiB, w.TimeoutMs / 1000.0);

    /// <summary>List price per second of the requested resources.</summary>
    public double ListPricePerSecond(Workload w) =>
        (w.Cpu * Provider.Price.VcpuSecond) + (w.MemoryMiB / 1024.0 * Provider.Price.GibSecond);
}
