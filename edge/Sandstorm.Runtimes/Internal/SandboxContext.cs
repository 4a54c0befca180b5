using System.Security.Cryptography;
using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes.Internal;

/// <summary>Everything one execution owns on the host; all of it is removed when the execution ends.</summary>
internal sealed class SandboxContext
{
    public SandboxContext(ExecutionSpec spec, RuntimeOptions options)
    {
        Spec = spec;
        Options = options;
        // Short, hex-only ids: they become cgroup names, container ids and paths embedded in the launcher script.
        Id = "ss" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
    }

    public string Id { get; }

    public ExecutionSpec Spec { get; }

    public RuntimeOptions Options { get; }

    public SandboxCgroup? Cgroup { get; set; }

    public Scratch? Scratch { get; set; }

    /// <summary>Per-execution directory for an OCI bundle, if the runtime needs one.</summary>
    public string? BundleDirectory { get; set; }
}
