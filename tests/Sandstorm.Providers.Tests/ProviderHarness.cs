using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Sandstorm.Core.Contracts;
using Sandstorm.Providers.Cloud;
using Sandstorm.Testing;

namespace Sandstorm.Providers.Tests;

/// <summary>What one run through an adapter came to: a result, or the provision or execution failure.</summary>
internal sealed record RunAttempt(SandboxLease? Lease, ExecutionResult? Result, ProviderException? ProvisionError, ProviderException? ExecuteError);

/// <summary>What a fault at one step must come to, for the run and for the adapter's exception.</summary>
public enum Expect
{
    /// <summary>The run succeeds with all its output.</summary>
    Succeeds,

    /// <summary>The run succeeds after reattaching; output written while detached may be missing, so it is marked truncated.</summary>
    SucceedsReattached,

    /// <summary>Provisioning fails (transient: the pipeline may retry or fail over); nothing ran.</summary>
    ProvisionFails,

    /// <summary>The execution fails with NeverStarted: the code provably did not start, a retry is safe.</summary>
    NeverStarted,

    /// <summary>The execution fails, final: execution-interrupted, not transient, not never-started.</summary>
    Interrupted,

    /// <summary>
    /// The run's own deadline passed without an answer: a timed-out result (a synchronous API cannot tell a hung provider
    /// from slow code), final, never retried.
    /// </summary>
    TimedOut,
}

/// <summary>Builds the adapters exactly as production does (configuration → AddSandstormCloudProviders), pointed at stand-ins.</summary>
internal static class ProviderHarness
{
    public static ServiceProvider Build(IDictionary<string, string?> config, Action<IServiceCollection>? services = null)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(config).Build();
        var collection = new ServiceCollection();
        collection.AddLogging();
        services?.Invoke(collection);
        collection.AddSandstormCloudProviders(configuration);
        return collection.BuildServiceProvider();
    }

    /// <summary>Fast resilience settings for tests: short delays, a breaker that only opens when a test means it to.</summary>
    public static Dictionary<string, string?> Resilience(string section, int breakerThroughput = 1000) => new()
    {
        [$"{section}:RetryBaseDelay"] = "00:00:00.050",
        [$"{section}:MaxRetryAfter"] = "00:00:02",
        [$"{section}:MaxRetries"] = "3",
        [$"{section}:RequestTimeout"] = "00:00:05",
        [$"{section}:ProvisionTimeout"] = "00:00:10",
        [$"{section}:ExecutionGrace"] = "00:00:05",
        [$"{section}:BreakerMinimumThroughput"] = breakerThroughput.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [$"{section}:BreakerFailureRatio"] = "0.5",
        [$"{section}:BreakerBreakDuration"] = "00:00:30",
    };

    /// <summary>
    /// Settings for fault tests: the waits a fault causes (a call, a create, the grace after a run's timeout) are short but
    /// leave room for a loaded machine, retries are quick, the breaker stays closed.
    /// </summary>
    public static Dictionary<string, string?> Faulty(string section)
    {
        var config = Resilience(section);
        config[$"{section}:RequestTimeout"] = "00:00:05";
        config[$"{section}:ProvisionTimeout"] = "00:00:05";
        config[$"{section}:ExecutionGrace"] = "00:00:02";
        return config;
    }

    public static ProvisionRequest Request(string language = Languages.Python, IsolationLevel isolation = IsolationLevel.Standard, TimeSpan? timeout = null, string tenant = "tenant-a") =>
        new("run_" + Guid.NewGuid().ToString("n")[..24], tenant, "any", "", language, 1, 512, timeout ?? TimeSpan.FromSeconds(30), isolation);

    /// <summary>
    /// One run through an adapter the way the run pipeline drives it: provision; execute once; release whatever was leased,
    /// or, when provisioning failed, whatever the provider holds for the run (its create may have landed).
    /// </summary>
    public static async Task<RunAttempt> RunOnceAsync(ISandboxProvider provider, ProvisionRequest request, ExecutionSpec spec)
    {
        SandboxLease lease;
        try
        {
            lease = await provider.ProvisionAsync(request, default);
        }
        catch (ProviderException e)
        {
            await provider.ReleaseRunAsync(request.RunId, request.TenantId, default);
            return new RunAttempt(null, null, e, null);
        }

        try
        {
            return new RunAttempt(lease, await provider.ExecuteAsync(lease, spec, default), null, null);
        }
        catch (ProviderException e)
        {
            return new RunAttempt(lease, null, null, e);
        }
        finally
        {
            await provider.ReleaseAsync(lease, default);
        }
    }

    public static ExecutionSpec Spec(string code, string language = Languages.Python, TimeSpan? timeout = null, int outputLimit = ExecutionLimits.DefaultOutputLimitBytes,
        IReadOnlyDictionary<string, string>? files = null, IReadOnlyDictionary<string, string>? env = null) => new()
        {
            Language = language,
            Code = code,
            Timeout = timeout ?? TimeSpan.FromSeconds(20),
            OutputLimitBytes = outputLimit,
            Files = files,
            Environment = env,
        };

    /// <summary>Runs an sdk-checks script (copied to the test output) with node; returns (exit code, stdout, stderr).</summary>
    public static Task<(int Exit, string Stdout, string Stderr)> RunNodeAsync(string script, IDictionary<string, string> env, TimeSpan timeout) =>
        // ESM resolves packages from the script's own directory upwards, which reaches the repository's node_modules.
        NodeScript.RunAsync(
            [Path.Combine(AppContext.BaseDirectory, "sdk-checks", script)],
            new Dictionary<string, string>(env) { ["NODE_PATH"] = Path.Combine(NodeScript.RepositoryRoot(), "node_modules") },
            timeout);
}
