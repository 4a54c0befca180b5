namespace Sandstorm.Runtimes;

/// <summary>Creates every runtime this agent knows, in the order <c>check</c> lists them.</summary>
public static class RuntimeRegistry
{
    /// <summary>Whether this agent runs as root (effective uid 0); otherwise only rootless runtimes are offered.</summary>
    public static bool RunsAsRoot => Internal.Libc.IsRoot;

    public static IReadOnlyList<ISandboxRuntime> CreateAll(RuntimeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return
        [
            new ProcessRuntime(options),
            new BwrapRuntime(options),
            new RuncRuntime(options),
            new PodmanRuntime(options),
            new GvisorRuntime(options),
            new MicroVmRuntime(options),
        ];
    }
}
