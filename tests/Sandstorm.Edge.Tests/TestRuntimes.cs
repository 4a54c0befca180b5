using System.Diagnostics;
using Sandstorm.Runtimes;

namespace Sandstorm.Edge.Tests;

/// <summary>
/// The runtimes under test, with their own work root and cgroup parent so other users of this machine's
/// runtimes (an agent, the local provider) neither disturb nor get blamed by the leftover checks.
/// </summary>
internal static class TestRuntimes
{
    public static RuntimeOptions Options { get; } = new()
    {
        // Per test process: a run that was killed (or another running on this machine) leaves nothing this one blames.
        WorkRoot = Path.Combine(Path.GetTempPath(), $"sandstorm-edge-tests-{Environment.ProcessId}"),
        CgroupParent = $"sandstorm/edge-tests-{Environment.ProcessId}",
        ScratchSizeMiB = 32,
        TmpSizeMiB = 16,
        // As the agent runs gVisor; the hostile cases run in warm sandboxes (see HostileCodeTests.RunAsync).
        WarmGvisorSandboxes = 1,
        // One microVM image per machine's test runs rather than a build (a download from the Debian mirror) per run.
        MicroVmImageRoot = Path.Combine(Path.GetTempPath(), "sandstorm-edge-tests-microvm-image"),
    };

    public static IReadOnlyList<ISandboxRuntime> All { get; } = CreateAll();

    private static IReadOnlyList<ISandboxRuntime> CreateAll()
    {
        // The per-process work root and cgroup parent go when the test process does.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => RemoveOwnState();
        return RuntimeRegistry.CreateAll(Options);
    }

    private static void RemoveOwnState()
    {
        // The warm gVisor sandbox is kept until its runtime is disposed.
        foreach (var runtime in All.OfType<IAsyncDisposable>())
        {
            runtime.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(20));
        }

        foreach (var controller in new[] { "memory", "pids", "cpu", "cpuacct" })
        {
            try
            {
                Directory.Delete(Path.Combine(Options.CgroupRoot, controller, Options.CgroupParent));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Still in use (a test left something; its own check said so) or never made.
            }
        }

        try
        {
            Directory.Delete(Options.WorkRoot, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A mount left behind keeps it; the leftover checks reported that.
        }
    }

    /// <summary>Runtimes expected to work on the CI machines (Debian with bubblewrap, runc, runsc, podman, root).</summary>
    public static IReadOnlyList<string> Expected { get; } = ["process", "bwrap", "runc", "podman", "gvisor", "qemu-microvm"];

    private static readonly Lazy<IReadOnlyList<(ISandboxRuntime Runtime, RuntimeProbe Probe)>> Probed = new(() =>
        [.. All.Select(r => (r, r.ProbeAsync(CancellationToken.None).GetAwaiter().GetResult()))]);

    public static IReadOnlyList<(ISandboxRuntime Runtime, RuntimeProbe Probe)> Probes => Probed.Value;

    public static ISandboxRuntime Get(string name) => All.Single(r => r.Name == name);

    public static GvisorRuntime Gvisor => All.OfType<GvisorRuntime>().Single();

    private static int gvisorWarmFailed;

    /// <summary>
    /// Waits until gVisor's warm sandbox is ready. After a first failure it answers false at once: a pool that
    /// cannot boot fails every test that needs it, but must not cost each of them a minute of waiting.
    /// </summary>
    public static async Task<bool> GvisorWarmAsync()
    {
        if (Volatile.Read(ref gvisorWarmFailed) != 0)
        {
            return false;
        }

        if (await Gvisor.WaitWarmAsync(TimeSpan.FromSeconds(60), CancellationToken.None))
        {
            return true;
        }

        Interlocked.Exchange(ref gvisorWarmFailed, 1);
        return false;
    }

    /// <summary>Names of runtimes that work here and claim at least standard isolation (filesystem, network, syscalls).</summary>
    public static IEnumerable<string> WorkingSandboxes()
    {
        foreach (var (runtime, probe) in Probes)
        {
            if (runtime is MicroVmRuntime)
            {
                // Seconds per boot under TCG: its hostile cases share guests in MicroVmTests instead.
                continue;
            }

            if (runtime.Isolation >= Core.Contracts.IsolationLevel.Standard && probe.Works)
            {
                yield return runtime.Name;
            }
            else if (runtime.Isolation >= Core.Contracts.IsolationLevel.Standard)
            {
                // Visible in the test log: this runtime's hostile cases are not run here.
                Console.WriteLine($"SKIPPED hostile suite for {runtime.Name}: {probe.Reason}");
            }
        }
    }

    /// <summary>Every working runtime, including <c>process</c> (for the resource cases, which it does claim).</summary>
    public static IEnumerable<string> WorkingAll() =>
        Probes.Where(p => p.Probe.Works && p.Runtime is not MicroVmRuntime).Select(p => p.Runtime.Name);

    /// <summary>Output of a host command (for runc/runsc/podman state checks).</summary>
    public static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return output;
    }
}
