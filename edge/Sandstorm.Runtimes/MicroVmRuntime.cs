using Sandstorm.Core.Contracts;

namespace Sandstorm.Runtimes;

/// <summary>
/// Isolation <c>maximum</c>: hardware virtualisation. Registered so <c>check</c> and the selector can say why it is
/// unavailable: Firecracker and Kata need /dev/kvm, and a QEMU microvm under TCG emulation is absent or far too slow
/// to start per execution. Executing always refuses.
/// </summary>
public sealed class MicroVmRuntime : ISandboxRuntime
{
    public const string RuntimeName = "qemu-microvm";

    private static readonly string[] QemuPaths = ["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"];

    public string Name => RuntimeName;

    public IsolationLevel Isolation => IsolationLevel.Maximum;

    public Task<RuntimeProbe> ProbeAsync(CancellationToken ct)
    {
        if (!File.Exists("/dev/kvm"))
        {
            var qemu = QemuPaths.Any(File.Exists)
                ? "QEMU TCG (software emulation) is too slow to boot a microVM per execution"
                : "QEMU is not installed for a TCG fallback";
            return Task.FromResult(RuntimeProbe.NotWorking($"no /dev/kvm: Firecracker/Kata need KVM; {qemu}"));
        }

        return Task.FromResult(RuntimeProbe.NotWorking("/dev/kvm is present but no microVM runtime (Firecracker, Kata, QEMU microvm) is set up on this agent"));
    }

    public Task<ExecutionResult> ExecuteAsync(ExecutionSpec spec, CancellationToken ct) =>
        throw new Core.Errors.SandstormException(
            Core.Errors.ErrorCodes.IsolationUnavailable,
            "isolation level 'maximum' needs /dev/kvm for Firecracker or Kata; none of this machine's runtimes provides it",
            422);
}
