using System.Globalization;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// Isolation <c>none</c>: the interpreter as a plain child process of this one, for trusted code. Limits come from
/// cgroup v1 (memory, pids, cpu) when this process may create cgroups, otherwise from rlimits; the timeout, output
/// caps and killing of the whole tree hold either way (by cgroup, else by process group). It claims no
/// filesystem or network isolation: the code sees the host as this process's user does.
/// </summary>
public sealed class ProcessRuntime : SandboxRuntimeBase, IAsyncDisposable
{
    private readonly PythonForkServer _python;

    public const string RuntimeName = "process";

    public ProcessRuntime()
        : this(new RuntimeOptions())
    {
    }

    public ProcessRuntime(RuntimeOptions options)
        : base(options)
    {
        _python = new PythonForkServer(Options);
    }

    public override string Name => RuntimeName;

    public override IsolationLevel Isolation => IsolationLevel.None;

    protected override bool RequiresCgroups => false;

    protected override string RlimitEnforcement =>
        "memory: RLIMIT_DATA per process (none for Node); pids: none (the process group is killed at the end); cpu: RLIMIT_CPU seconds; file size: RLIMIT_FSIZE";

    // Trusted code runs as the agent's own user; only sandboxing runtimes switch to the sandbox user.
    protected override bool RunsAsSandboxUser => false;

    protected override Task<string?> CheckPrerequisitesAsync(CancellationToken ct) => Task.FromResult<string?>(null);

    /// <summary>
    /// Python runs are forked from a warm interpreter (<see cref="PythonForkServer"/>) once it is up, when the execution has
    /// cgroups to hold its limits (the launcher's rlimits are for the degraded mode) and Shield does not watch it;
    /// everything else starts its interpreter.
    /// </summary>
    private protected override async Task<ChildOutcome> RunCodeAsync(SandboxContext context, Func<Task> stopSandbox, CancellationToken ct)
    {
        // A watched run starts its own interpreter: a fork of the warm one runs no exec, which the monitor needs to see it.
        if (context.Cgroup is null || context.Watched || !Options.PythonForkServer || !PythonForkServer.Serves(context.Spec) || !_python.IsReady())
        {
            return await base.RunCodeAsync(context, stopSandbox, ct);
        }

        var launch = await PrepareAsync(context, ct);
        // Null: the server gave no pid and nothing ran in the cgroups, so the interpreter starts cold instead.
        return await ChildRunner.RunForkedAsync(_python, launch, launch.Arguments[^1], context, stopSandbox, ct)
            ?? await ChildRunner.RunAsync(launch, context, stopSandbox, ct);
    }

    public ValueTask DisposeAsync() => _python.DisposeAsync();

    /// <summary>Python runs forked by the fork server so far.</summary>
    internal long ForkedPythonRuns => _python.Forked;

    /// <summary>Pid of the Python fork server while it runs.</summary>
    internal int? PythonForkServerPid => _python.Pid;

    internal PythonForkServer ForkServer => _python;

    /// <summary>Starts the Python fork server if needed and waits (bounded) until it is up.</summary>
    internal async Task<bool> WaitForPythonForkServerAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!_python.IsReady())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(20);
        }

        return true;
    }

    private protected override Task<Launch> PrepareAsync(SandboxContext context, CancellationToken ct)
    {
        var spec = context.Spec;
        var scratch = context.Scratch!.HostPath;
        var command = CodeCommand(spec, scratch);
        var ulimits = new List<string>
        {
            // Files larger than the scratch cap would only fill the host disk (dash's ulimit -f counts 512-byte blocks).
            "-f " + ((long)context.Options.ScratchSizeMiB * 2048).ToString(CultureInfo.InvariantCulture),
        };
        if (context.Cgroup is null)
        {
            // Degraded mode: CPU seconds bound a runaway loop even if this process dies before its timer fires;
            // RLIMIT_DATA bounds heap growth (not RLIMIT_AS, which kills Node at start-up).
            ulimits.Add("-t " + ((long)Math.Ceiling(spec.Timeout.TotalSeconds * Math.Max(1, spec.Cpu)) + 1).ToString(CultureInfo.InvariantCulture));
            if (!Languages.RunsOnNode(spec.Language))
            {
                ulimits.Add("-d " + ((long)spec.MemoryMiB * 1024).ToString(CultureInfo.InvariantCulture));
            }
        }

        return Task.FromResult(new Launch
        {
            Command = command[0],
            Arguments = command[1..],
            Environment = SandboxEnvironment(context, scratch),
            WorkingDirectory = scratch,
            Ulimits = ulimits,
            // The local provider's children must not outlive a SIGKILLed control plane (nothing else would stop them).
            DieWithHost = true,
        });
    }
}
