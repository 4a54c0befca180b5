using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Sandstorm.Core.Contracts;
using Sandstorm.Runtimes.Internal;

namespace Sandstorm.Runtimes;

/// <summary>
/// Isolation <c>maximum</c>: each execution in its own QEMU <c>microvm</c> guest with its own kernel (Debian's cloud
/// kernel, busybox initramfs, a read-only /usr image with python3 and bash; see <see cref="MicroVmImage"/>). KVM where
/// it boots a guest, TCG (software emulation) where it does not. No network device; the host's files are not shared.
/// The guest's init (<c>microvm-init.sh</c>) takes the job over a virtio-serial port, runs it as nobody in a guest
/// cgroup with the run's memory, pids and CPU limits, and streams stdout and stderr over two more ports; the host kills
/// QEMU when it has the exit line or the run's time is up.
/// </summary>
public sealed class MicroVmRuntime(RuntimeOptions options) : SandboxRuntimeBase(options)
{
    public const string RuntimeName = "qemu-microvm";

    /// <summary>Guest RAM beyond the run's memory limit: the guest kernel, its page cache and the init.</summary>
    public const int GuestOverheadMiB = 96;

    /// <summary>Host memory of the QEMU process beyond the guest's RAM (device emulation, TCG's translation cache).</summary>
    public const int QemuOverheadMiB = 192;

    /// <summary>Longest a guest may take from QEMU's start to its init's "ready" (TCG on a loaded machine is slow).</summary>
    public static readonly TimeSpan BootTimeout = TimeSpan.FromSeconds(90);

    private static readonly string[] QemuPaths = ["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"];

    // Probes are cached per process (not per instance): what the probe chose holds for every instance of the runtime.
    private static string accelerator = "tcg";
    private static string acceleratorReason = "not probed yet";

    public override string Name => RuntimeName;

    public override IsolationLevel Isolation => IsolationLevel.Maximum;

    /// <summary>The accelerator guests run with here, <c>kvm</c> or <c>tcg</c>, and why (known once the runtime was probed).</summary>
    public string Accelerator => $"{accelerator} ({acceleratorReason})";

    public override string LimitEnforcement =>
        "memory: guest RAM (limit + " + GuestOverheadMiB.ToString(CultureInfo.InvariantCulture) + " MiB) and a guest cgroup v2 at the limit; "
        + "pids and cpu: guest cgroup v2 and vCPUs; QEMU itself: " + base.LimitEnforcement + "; accelerator: " + Accelerator;

    private protected override int CgroupPidsLimit(ExecutionSpec spec) => 64;

    private protected override long CgroupMemoryBytes(ExecutionSpec spec) => (long)(GuestMemoryMiB(spec) + QemuOverheadMiB) * 1024 * 1024;

    private static int GuestMemoryMiB(ExecutionSpec spec) => spec.MemoryMiB + GuestOverheadMiB;

    protected override async Task<string?> CheckPrerequisitesAsync(CancellationToken ct)
    {
        if (QemuPaths.FirstOrDefault(File.Exists) is null)
        {
            return "QEMU is not installed (Debian package qemu-system-x86)";
        }

        // QEMU is bounded by a host cgroup beside the guest's own limits, and confined by dropping to nobody: a root agent.
        if (!SandboxCgroup.IsAvailable(Options, out var noCgroups))
        {
            return $"runs under a root agent only (QEMU is held in cgroup v1 limits): {noCgroups}";
        }

        try
        {
            await MicroVmImage.EnsureAsync(Options, ct);
        }
        catch (InvalidOperationException e)
        {
            return e.Message;
        }

        if (KvmProblem() is { } noKvm)
        {
            (accelerator, acceleratorReason) = ("tcg", noKvm);
            return null;
        }

        // /dev/kvm opening is not enough: on some nested hosts a 64-bit guest hangs right after kernel entry.
        (accelerator, acceleratorReason) = ("kvm", "a trial guest booted under KVM");
        try
        {
            var trial = await ExecuteAsync(
                new ExecutionSpec { Language = Languages.Bash, Code = "echo kvm-ok", MemoryMiB = 128, Timeout = TimeSpan.FromSeconds(10), IsolationLevel = Isolation },
                ct);
            if (trial.ExitCode == 0 && trial.Stdout.Trim() == "kvm-ok")
            {
                return null;
            }
        }
        catch (InvalidOperationException)
        {
            // Falls back to TCG below.
        }

        (accelerator, acceleratorReason) = ("tcg", "/dev/kvm opens but a trial guest did not boot under KVM");
        return null;
    }

    private static string? KvmProblem()
    {
        if (!File.Exists("/dev/kvm"))
        {
            return "no /dev/kvm";
        }

        try
        {
            using var kvm = File.Open("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "/dev/kvm cannot be opened: " + e.Message;
        }
    }

    private protected override async Task<Launch> PrepareAsync(SandboxContext context, CancellationToken ct)
    {
        if (Languages.RunsOnNode(context.Spec.Language))
        {
            throw new ArgumentException($"the qemu-microvm runtime's guest has python and bash only; '{context.Spec.Language}' is not supported there", nameof(context));
        }

        var vm = await MicroVmImage.EnsureAsync(Options, ct);
        var bundle = WorkRootPaths.Bundle(context.Options, context.Id);
        Directory.CreateDirectory(bundle, WorkRoot.Private);
        context.BundleDirectory = bundle;
        var socket = JobSocket(context);
        if (Encoding.UTF8.GetByteCount(socket) >= 104)
        {
            throw new InvalidOperationException($"the microVM's job socket path is too long for a Unix socket: {socket}");
        }

        var spec = context.Spec;
        var cpus = Math.Clamp((int)Math.Ceiling(spec.Cpu), 1, Environment.ProcessorCount);
        var append = "quiet panic=-1 rdinit=/init pci=off";
        List<string> accel;
        if (accelerator == "kvm")
        {
            accel = ["-accel", "kvm", "-cpu", "host"];
        }
        else
        {
            // No PIT or HPET under microvm's reduced ACPI: the kernel cannot measure the TSC, so it is told the host's rate.
            accel = ["-accel", "tcg,tb-size=64", "-cpu", "max"];
            append += " tsc_early_khz=" + HostTscKhz().ToString(CultureInfo.InvariantCulture);
        }

        var console = Environment.GetEnvironmentVariable("SANDSTORM_MICROVM_CONSOLE");
        List<string> arguments =
        [
            "-M", "microvm", .. accel,
            "-m", GuestMemoryMiB(spec).ToString(CultureInfo.InvariantCulture),
            "-smp", cpus.ToString(CultureInfo.InvariantCulture),
            "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none", "-monitor", "none",
            "-serial", string.IsNullOrEmpty(console) ? "none" : "file:" + console,
            "-sandbox", "on,obsolete=deny,spawn=deny,resourcecontrol=deny",
            "-kernel", vm.Kernel, "-initrd", vm.Initramfs,
            "-append", string.IsNullOrEmpty(console) ? append : append + " console=ttyS0",
            "-drive", $"id=usr,file={vm.Usr},format=raw,if=none,readonly=on",
            "-device", "virtio-blk-device,drive=usr",
            "-device", "virtio-serial-device,max_ports=4",
            "-chardev", $"socket,id=job,path={socket},server=on,wait=off",
            "-device", "virtserialport,chardev=job,name=sandstorm.job",
            "-chardev", "file,id=out,path=/proc/self/fd/1",
            "-device", "virtserialport,chardev=out,name=sandstorm.stdout",
            "-chardev", "file,id=err,path=/proc/self/fd/2",
            "-device", "virtserialport,chardev=err,name=sandstorm.stderr",
        ];
        if (Libc.IsRoot)
        {
            arguments.AddRange(["-runas", "nobody"]);
        }

        return new Launch
        {
            Command = QemuPaths.First(File.Exists),
            Arguments = arguments,
            Environment = HostEnvironment(context),
            WorkingDirectory = bundle,
            DieWithHost = true,
        };
    }

    private protected override async Task<ChildOutcome> RunCodeAsync(SandboxContext context, Func<Task> stopSandbox, CancellationToken ct)
    {
        var spec = context.Spec;
        var time = Options.TimeProvider;
        var launch = await PrepareAsync(context, ct);
        var job = JobArchive(context);
        var (psi, direct) = ChildRunner.StartInfo(launch, newSession: context.Cgroup is null);
        using var process = new Process { StartInfo = psi };
        await Spawner.StartAsync(process, context.Cgroup, direct ? launch.InheritedFiles : null, ChildRunner.CloseInput);
        using var abortReads = new CancellationTokenSource();
        var stdout = BoundedOutput.ReadAsync(process.StandardOutput.BaseStream, spec.OutputLimitBytes, abortReads.Token);
        var stderr = BoundedOutput.ReadAsync(process.StandardError.BaseStream, spec.OutputLimitBytes, abortReads.Token);
        string? status = null;
        var timedOut = false;
        var wall = TimeSpan.Zero;
        try
        {
            using var socket = await ConnectAsync(JobSocket(context), process, ct);
            await using var channel = new NetworkStream(socket, ownsSocket: false);
            using (var boot = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                boot.CancelAfter(BootTimeout);
                var ready = await ReadLineAsync(channel, boot.Token);
                if (ready != "ready")
                {
                    throw new InvalidOperationException($"the microVM's init did not start: {ready ?? "no answer"}");
                }
            }

            var started = time.GetTimestamp();
            await channel.WriteAsync(Encoding.ASCII.GetBytes($"job {job.Length.ToString(CultureInfo.InvariantCulture)}\n"), ct);
            await channel.WriteAsync(job, ct);
            using var timeout = new CancellationTokenSource(spec.Timeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, ct);
            try
            {
                status = await ReadLineAsync(channel, linked.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                timedOut = true;
            }

            wall = timedOut ? spec.Timeout : time.GetElapsedTime(started);
        }
        finally
        {
            // The VM is over once its init has reported (or failed to): nothing in it outlives QEMU.
            await StopQemuAsync(process);
            await stopSandbox();
            abortReads.CancelAfter(Options.KillGrace);
        }

        var (outBytes, outTruncated) = await stdout;
        var (errBytes, errTruncated) = await stderr;
        ct.ThrowIfCancellationRequested();
        if (timedOut)
        {
            return new ChildOutcome(outBytes, outTruncated, errBytes, errTruncated, null, wall, TimedOut: true);
        }

        // "exit CODE oom KILLS peak BYTES cpu MICROSECONDS"
        var words = (status ?? "").Split(' ');
        if (words.Length < 8 || words[0] != "exit" || !int.TryParse(words[1], CultureInfo.InvariantCulture, out var exit))
        {
            throw new InvalidOperationException($"the microVM ended without an exit status ({status ?? "QEMU exited"}): {Encoding.UTF8.GetString(errBytes).Trim()}");
        }

        long.TryParse(words[3], CultureInfo.InvariantCulture, out var ooms);
        long.TryParse(words[5], CultureInfo.InvariantCulture, out var peak);
        long.TryParse(words[7], CultureInfo.InvariantCulture, out var cpuMicros);
        return new ChildOutcome(outBytes, outTruncated, errBytes, errTruncated, exit, wall, TimedOut: false)
        {
            Guest = (cpuMicros / 1000, peak, ooms > 0),
        };
    }

    private static string JobSocket(SandboxContext context) => Path.Combine(WorkRootPaths.Bundle(context.Options, context.Id), "job.sock");

    // QEMU listens on the job socket once it has set up its devices; it exits early on a bad command line.
    private static async Task<Socket> ConnectAsync(string path, Process qemu, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            if (File.Exists(path))
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), ct);
                    return socket;
                }
                catch (SocketException)
                {
                    socket.Dispose();
                }
            }

            if (qemu.HasExited || DateTimeOffset.UtcNow > deadline)
            {
                throw new InvalidOperationException(qemu.HasExited ? $"QEMU exited ({qemu.ExitCode}) before the guest started" : "QEMU did not open the microVM's job socket");
            }

            await Task.Delay(10, ct);
        }
    }

    // One line from the guest's init, at most 256 bytes; null at end of stream.
    private static async Task<string?> ReadLineAsync(NetworkStream stream, CancellationToken ct)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (line.Count < 256)
        {
            if (await stream.ReadAsync(one, ct) == 0)
            {
                return line.Count == 0 ? null : Encoding.ASCII.GetString([.. line]);
            }

            if (one[0] == (byte)'\n')
            {
                return Encoding.ASCII.GetString([.. line]);
            }

            line.Add(one[0]);
        }

        return Encoding.ASCII.GetString([.. line]);
    }

    private async Task StopQemuAsync(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }

        using var grace = new CancellationTokenSource(Options.KillGrace, Options.TimeProvider);
        try
        {
            await process.WaitForExitAsync(grace.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    // The job: the command (run.sh), its limits and the scratch's files, as a tar the guest unpacks into /.
    private byte[] JobArchive(SandboxContext context)
    {
        var spec = context.Spec;
        var command = context.Command ?? CodeCommand(spec, "/scratch");
        var run = new StringBuilder("cd /scratch || exit 111\nexec /bin/env -i");
        foreach (var (key, value) in SandboxEnvironment(context, "/scratch"))
        {
            run.Append(' ').Append(Quote(key + "=" + value));
        }

        foreach (var word in command)
        {
            run.Append(' ').Append(Quote(word));
        }

        run.Append('\n');
        var cpuMax = spec.Cpu > 0 ? ((long)Math.Ceiling(spec.Cpu * 100_000)).ToString(CultureInfo.InvariantCulture) + " 100000" : "max 100000";
        var limits = string.Create(CultureInfo.InvariantCulture, $"""
            MEMORY_BYTES={(long)spec.MemoryMiB * 1024 * 1024}
            PIDS={spec.MaxProcesses}
            CPU_MAX='{cpuMax}'
            SCRATCH_MIB={Options.ScratchSizeMiB}
            TMP_MIB={Options.TmpSizeMiB}

            """);
        using var buffer = new MemoryStream();
        using (var tar = new TarWriter(buffer, TarEntryFormat.Ustar, leaveOpen: true))
        {
            Add(tar, "job/run.sh", run.ToString());
            Add(tar, "job/limits", limits);
            var scratch = context.Scratch?.HostPath;
            if (scratch is not null)
            {
                tar.WriteEntry(new UstarTarEntry(TarEntryType.Directory, "job/scratch/") { Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute });
                foreach (var path in Directory.EnumerateFileSystemEntries(scratch, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                {
                    var name = "job/scratch/" + Path.GetRelativePath(scratch, path);
                    if (Directory.Exists(path))
                    {
                        tar.WriteEntry(new UstarTarEntry(TarEntryType.Directory, name + "/") { Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute });
                    }
                    else
                    {
                        Add(tar, name, File.ReadAllBytes(path));
                    }
                }
            }
        }

        return buffer.ToArray();
    }

    private static void Add(TarWriter tar, string name, string content) => Add(tar, name, Encoding.UTF8.GetBytes(content));

    private static void Add(TarWriter tar, string name, byte[] content)
    {
        var entry = new UstarTarEntry(TarEntryType.RegularFile, name)
        {
            Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            DataStream = new MemoryStream(content),
        };
        tar.WriteEntry(entry);
    }

    private static string Quote(string word) => "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static long HostTscKhz()
    {
        foreach (var line in File.ReadLines("/proc/cpuinfo"))
        {
            if (line.StartsWith("cpu MHz", StringComparison.Ordinal)
                && double.TryParse(line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..], CultureInfo.InvariantCulture, out var mhz))
            {
                return (long)(mhz * 1000);
            }
        }

        return 2_000_000;
    }
}
