using System.Collections.Concurrent;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes;
using Sandstorm.Runtimes.Shield;
using Sandstorm.Shield;

namespace Sandstorm.Shield.Tests;

/// <summary>
/// One real monitor (bpftrace + gVisor's trace socket) for the monitoring tests, with real bwrap and gVisor runtimes in
/// their own work root and cgroup parent. It does not skip: on a machine where bpftrace cannot run the tests fail,
/// with the monitor's reason (CI is root with bpftrace installed).
/// </summary>
public sealed class MonitorFixture : IAsyncLifetime
{
    private readonly ConcurrentDictionary<ExecutionSpec, ShieldPolicy> policies = new(ReferenceEqualityComparer.Instance);

    public ShieldMonitor Monitor { get; private set; } = null!;

    public RuntimeOptions Options { get; private set; } = null!;

    public BwrapRuntime Bwrap { get; private set; } = null!;

    public GvisorRuntime Gvisor { get; private set; } = null!;

    public RuncRuntime Runc { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var baseOptions = new RuntimeOptions
        {
            WorkRoot = Path.Combine(Path.GetTempPath(), "sandstorm-shield-tests"),
            CgroupParent = "sandstorm/shield-tests",
            ScratchSizeMiB = 32,
            TmpSizeMiB = 16,
        };
        // The module syscalls' detection is checked too (through raw_syscalls on this kernel, off by default: costly).
        Monitor = await ShieldMonitor.StartAsync(ShieldMonitorOptions.For(baseOptions) with { RawModuleSyscalls = true });
        Options = baseOptions with
        {
            Shield = Monitor,
            ShieldPolicy = spec => policies.TryRemove(spec, out var policy) ? policy : new ShieldPolicy(),
        };
        Bwrap = new BwrapRuntime(Options);
        Gvisor = new GvisorRuntime(Options);
        Runc = new RuncRuntime(Options);
    }

    public async Task DisposeAsync()
    {
        await Gvisor.DisposeAsync();
        await Monitor.DisposeAsync();
    }

    /// <summary>Runs code in a sandbox under watch and returns the result with the watch.</summary>
    public async Task<(ExecutionResult Result, ShieldWatch Watch)> RunAsync(ISandboxRuntime runtime, string language, string code, RuleSet? tenantRules = null, int timeoutSeconds = 60)
    {
        ShieldWatch? watch = null;
        var spec = new ExecutionSpec
        {
            Language = language,
            Code = code,
            Timeout = TimeSpan.FromSeconds(timeoutSeconds),
            IsolationLevel = runtime.Isolation,
            MemoryMiB = 256,
        };
        policies[spec] = new ShieldPolicy { TenantRules = tenantRules, OnWatch = w => watch = w };
        var result = await runtime.ExecuteAsync(spec, CancellationToken.None);
        Assert.NotNull(watch);
        await watch.QuarantineCompletion;
        return (result, watch);
    }

    /// <summary>Host processes whose command line contains <paramref name="marker"/> (any pid namespace).</summary>
    public static List<int> ProcessesWith(string marker)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Contains(marker, StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return found;
    }
}

[CollectionDefinition(Name)]
public sealed class MonitorCollection : ICollectionFixture<MonitorFixture>
{
    public const string Name = "shield-monitor";
}
