using Sandstorm.Core.Contracts;
using Sandstorm.Core.Errors;

namespace Sandstorm.Runtimes;

/// <summary>Maps an isolation level (and optionally a runtime name) to the best runtime that works on this machine.</summary>
public sealed class RuntimeSelector
{
    /// <summary>Runtimes per level, best first (DESIGN.md's table).</summary>
    public static IReadOnlyDictionary<IsolationLevel, IReadOnlyList<string>> Preference { get; } = new Dictionary<IsolationLevel, IReadOnlyList<string>>
    {
        [IsolationLevel.None] = [ProcessRuntime.RuntimeName],
        [IsolationLevel.Standard] = [BwrapRuntime.RuntimeName, RuncRuntime.RuntimeName, PodmanRuntime.RuntimeName],
        [IsolationLevel.Strong] = [GvisorRuntime.RuntimeName],
        [IsolationLevel.Maximum] = [MicroVmRuntime.RuntimeName],
    };

    private readonly IReadOnlyList<ISandboxRuntime> runtimes;

    public RuntimeSelector(IEnumerable<ISandboxRuntime> runtimes)
    {
        this.runtimes = [.. runtimes];
    }

    public IReadOnlyList<ISandboxRuntime> Runtimes => runtimes;

    /// <summary>
    /// The runtime to use for <paramref name="level"/>: the named one if given, it works and it isolates at least
    /// that strongly; otherwise the best working runtime of the level itself. Throws <see cref="SandstormException"/>
    /// (<see cref="ErrorCodes.IsolationUnavailable"/>) with the reason when there is none.
    /// </summary>
    public async Task<ISandboxRuntime> SelectAsync(IsolationLevel level, string? runtimeName, CancellationToken ct)
    {
        if (!string.IsNullOrEmpty(runtimeName))
        {
            var named = runtimes.FirstOrDefault(r => string.Equals(r.Name, runtimeName, StringComparison.OrdinalIgnoreCase))
                ?? throw Refuse($"unknown runtime '{runtimeName}' (known: {string.Join(", ", runtimes.Select(r => r.Name))})");
            if (named.Isolation < level)
            {
                throw Refuse($"runtime '{named.Name}' provides isolation '{Format(named.Isolation)}', below the requested '{Format(level)}'");
            }

            var probe = await named.ProbeAsync(ct);
            return probe.Works ? named : throw Refuse($"runtime '{named.Name}' does not work on this machine: {probe.Reason}");
        }

        var reasons = new List<string>();
        var candidates = Preference.TryGetValue(level, out var names) ? names : [];
        foreach (var name in candidates)
        {
            var runtime = runtimes.FirstOrDefault(r => r.Name == name);
            if (runtime is null)
            {
                continue;
            }

            var probe = await runtime.ProbeAsync(ct);
            if (probe.Works)
            {
                return runtime;
            }

            reasons.Add($"{runtime.Name}: {probe.Reason}");
        }

        if (level == IsolationLevel.Maximum)
        {
            throw Refuse("isolation level 'maximum' needs the qemu-microvm runtime (QEMU with a microVM image; KVM where it works, else TCG), which does not work on this machine"
                + (reasons.Count > 0 ? $" ({string.Join("; ", reasons)})" : ""));
        }

        throw Refuse($"no runtime for isolation level '{Format(level)}' works on this machine"
            + (reasons.Count > 0 ? $": {string.Join("; ", reasons)}" : ""));
    }

    public static string Format(IsolationLevel level) => level.ToString().ToLowerInvariant();

    private static SandstormException Refuse(string message) => new(ErrorCodes.IsolationUnavailable, message, 422);
}
